"""What every task shares: console output, resolving settings from invoke's config + environment, and
the one place where a ``CrossdockError`` becomes ``crossdock: error: ...`` and exit code 1."""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from invoke import Context, Exit, task

from .core.errors import CrossdockError
from .core.project import crossdock_metadata
from .core.settings import BY_NAME, Settings, flag_help, project_dir, raw_value, resolve, unknown_names

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


def flag_name(setting: str) -> str:
    """The task keyword (invoke's flag with ``_`` for ``-``) a setting takes: ``smoke_command`` -> ``command``."""
    return BY_NAME[setting].option.removeprefix("--").replace("-", "_")


def settings_task(*settings: str, flags: Mapping[str, tuple[Any, str]] | None = None,
                  extend: Mapping[str, str] | None = None, lazy: bool = False,
                  **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A task whose flags are the named settings, declared once in ``KNOBS`` (flag name, help, environment
    name and default come from there), plus task-only ``flags`` (name -> (default, help)); ``extend`` adds a
    sentence to a setting's help. The body is called as ``body(c, settings, **task_flags)`` with the resolved
    ``Settings`` (defaults < Cargo metadata < config file < environment < these flags); with ``lazy``, as
    ``body(c, load, **task_flags)``: ``load(**more)`` resolves them with more settings (or ``warn``) given,
    for a task that learns which project it is about only later (smoke: the last build's)."""
    flags = dict(flags or {})
    by_flag = {flag_name(name): name for name in settings}
    clash = set(by_flag) & set(flags)
    if clash:
        raise TypeError(f"task flags that are also settings: {sorted(clash)}")
    help_text = flag_help(*settings, extend=extend)
    help_text.update({name.replace("_", "-"): text for name, (_, text) in flags.items()})
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(flag, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for flag in by_flag]
    params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
               for name, (default, _) in flags.items()]

    def decorate(body: Callable[..., Any]) -> Any:
        @functools.wraps(body)
        def with_settings(c: Context, **kwargs: Any) -> Any:
            unknown = set(kwargs) - set(by_flag) - set(flags)
            if unknown:
                raise TypeError(f"{body.__name__}() got unexpected flags {sorted(unknown)}")
            given = {by_flag[k]: v for k, v in kwargs.items() if k in by_flag}
            rest = {name: kwargs.get(name, default) for name, (default, _) in flags.items()}
            if lazy:
                return body(c, lambda **more: load_settings(c, **given, **more), **rest)
            return body(c, load_settings(c, **given), **rest)

        with_settings.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        del with_settings.__wrapped__  # invoke reads the flags from the signature above, not the body's
        return crossdock_task(help=help_text, **options)(with_settings)

    return decorate
