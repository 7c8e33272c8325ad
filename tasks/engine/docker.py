"""Probes of the Docker engine and buildx. Read-only: they run even under ``inv --dry``."""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from typing import Any

from invoke import Context

from ..core.buildx import parse_driver
from ..core.errors import CrossdockError
from ..core.references import IndexEntry, parse_index


def probe_run(c: Context, argv: list[str], **kwargs: Any):  # -> invoke.Result
    """A read-only command: quiet, never fails the task, and runs even under `inv --dry`."""
    options: dict[str, Any] = dict(hide=True, warn=True, echo=False, in_stream=False, dry=False)
    options.update(kwargs)
    return c.run(shlex.join(argv), **options)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def image_index(c: Context, image: str) -> tuple[list[IndexEntry] | None, str]:
    """The platforms of an image's manifest list, through the registry (None and the error if unreadable;
    an empty list for a single-platform image)."""
    r = probe_run(c, ["docker", "buildx", "imagetools", "inspect", "--raw", image])
    if r.failed:
        return None, last_line(r.stderr)
    return parse_index(r.stdout), ""


class EngineError(CrossdockError):
    """The engine cannot do what was asked; one line naming what is missing and how to get it."""


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    builder: str
    driver: str


def probe_engine(c: Context, *, builder: str = "") -> EngineInfo:
    if shutil.which("docker") is None:
        raise EngineError("the docker CLI is not on PATH: install Docker (Debian: apt-get install docker.io; "
                          "this project's machines: scripts/provision-local.sh)")
    r = probe_run(c, ["docker", "version", "--format", "{{.Server.Version}}"])
    if r.failed or not r.stdout.strip():
        raise EngineError(f"cannot reach the Docker engine ({last_line(r.stderr)}): start dockerd "
                          f"(or scripts/provision-local.sh), or point DOCKER_HOST at a running engine")
    server = r.stdout.strip()
    r = probe_run(c, ["docker", "buildx", "inspect", *([builder] if builder else [])])
    if r.failed:
        # Only now ask whether buildx exists at all (one probe fewer on every healthy run).
        if probe_run(c, ["docker", "buildx", "version"]).failed:
            raise EngineError("docker buildx is not installed: install the buildx CLI plugin (package "
                              "docker-buildx or docker-buildx-plugin; on this project's machines "
                              "scripts/provision-local.sh)")
        raise EngineError(f"buildx builder {builder or '(current)'!r} is not usable ({last_line(r.stderr)}): "
                          f"create it (docker buildx create --name {builder or 'NAME'}) or unset CROSSDOCK_BUILDER")
    return EngineInfo(server_version=server, builder=builder, driver=parse_driver(r.stdout))
