"""What every task shares: console output and resolving settings from invoke's config + environment."""

from __future__ import annotations

import os
import shlex
import threading
from typing import Any

from invoke import Context

from .checks import IndexEntry, parse_index
from .settings import Settings, resolve

_print_lock = threading.Lock()


def say(message: str) -> None:
    with _print_lock:
        print(f"[crossdock] {message}", flush=True)


def say_block(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def load_settings(c: Context, **cli: Any) -> Settings:
    """Defaults < config file (c.config.crossdock) < environment/.env < CLI flags."""
    config = dict(c.config.get("crossdock", {}) or {})
    return resolve(config=config, environ=os.environ, cli=cli)


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
