"""Probes of the Docker engine and buildx. Read-only: they run even under ``inv --dry``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from invoke import Context

from .buildx import parse_driver
from .common import last_line, probe_run


class EngineError(RuntimeError):
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
