"""What every task shares: console output and resolving settings from invoke's config + environment."""

from __future__ import annotations

import os
import threading
from typing import Any

from invoke import Context

from .core.settings import Settings, resolve

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
