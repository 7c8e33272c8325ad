"""What every task shares: console output, resolving settings from invoke's config + environment, and
the one place where a ``CrossdockError`` becomes ``crossdock: error: ...`` and exit code 1."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from invoke import Context, Exit, task

from .core.errors import CrossdockError
from .core.project import crossdock_metadata
from .core.settings import Settings, project_dir, raw_value, resolve, unknown_names

_print_lock = threading.Lock()


def say(message: str) -> None:
    with _print_lock:
        print(f"[crossdock] {message}", flush=True)


def say_block(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def load_settings(c: Context, *, warn: bool = True, **cli: Any) -> Settings:
    """Defaults < the project's Cargo metadata < config file (c.config.crossdock) < environment/.env <
    CLI flags; warns about names that are no setting (a typo in a config key, a Cargo metadata key or a
    CROSSDOCK_* variable) unless ``warn`` is false (settings read only to find where to read them again)."""
    config = dict(c.config.get("crossdock", {}) or {})
    layers = dict(config=config, environ=os.environ, cli=cli)
    project = project_dir(raw_value("project", **layers))
    metadata = crossdock_metadata(project, package=raw_value("package", **layers))
    for warning in unknown_names(config=config, environ=os.environ, metadata=metadata,
                                 manifest=str(project / "Cargo.toml")) if warn else ():
        say(warning)
    return resolve(**layers, metadata=metadata)


def redact(message: str) -> str:
    """The registry password and the signing key's password never reach the console, whatever error text
    carried them."""
    from .engine.secrets import secret_values

    for secret in secret_values():
        message = message.replace(secret, "***")
    return message


def crossdock_task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """invoke's ``@task`` (flags are never abbreviated), with every ``CrossdockError`` turned into one
    clean ``crossdock: error: ...`` exit 1 instead of a traceback."""

    def decorate(body: Callable[..., Any]) -> Any:
        @functools.wraps(body)
        def run(c: Context, *args: Any, **kwargs: Any) -> Any:
            try:
                return body(c, *args, **kwargs)
            except CrossdockError as e:
                raise Exit(f"crossdock: error: {redact(str(e))}", code=1) from None

        return task(auto_shortflags=False, **options)(run)

    return decorate
