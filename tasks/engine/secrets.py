"""Registry credentials, kept out of every child process.

`tasks.py` (the entry point) moves REGISTRY_PASSWORD out of the environment (where `.env` or the caller
put it) into this module, so dockerd, the registry or any other process crossdock starts never
inherits it. The password only ever travels through `docker login --password-stdin` into a private,
temporary Docker config that is deleted when the task ends, and through HTTP Authorization headers
that are not forwarded on redirects.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import CrossdockError

USER_ENV = "REGISTRY_USER"
PASSWORD_ENV = "REGISTRY_PASSWORD"
_store: dict[str, str] = {}


def take_from_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Called once by the entry point, after `.env` is loaded."""
    if PASSWORD_ENV in environ:
        _store[PASSWORD_ENV] = environ.pop(PASSWORD_ENV)


def credentials() -> tuple[str, str]:
    user = os.environ.get(USER_ENV, "")
    password = _store.get(PASSWORD_ENV, os.environ.get(PASSWORD_ENV, ""))
    return user, password


class CredentialsError(CrossdockError):
    pass


def require_pair(user: str, password: str) -> bool:
    """True when credentials are configured; both halves or neither."""
    if bool(user) != bool(password):
        raise CredentialsError(f"{USER_ENV} and {PASSWORD_ENV} must both be set (in .env or the environment), "
                               f"or neither")
    return bool(user)


@contextmanager
def private_docker_config() -> Iterator[Path]:
    """A temporary DOCKER_CONFIG for this task (a copy of the user's config.json, if any): a login made
    in it never lands in ~/.docker, and it is deleted at the end."""
    source = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    folder = Path(tempfile.mkdtemp(prefix="crossdock-docker-config-"))
    if source.is_file():
        shutil.copyfile(source, folder / "config.json")
    previous = os.environ.get("DOCKER_CONFIG")
    os.environ["DOCKER_CONFIG"] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("DOCKER_CONFIG", None)
        else:
            os.environ["DOCKER_CONFIG"] = previous
        shutil.rmtree(folder, ignore_errors=True)
