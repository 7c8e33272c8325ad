"""Registry credentials, kept out of every child process.

`tasks.py` (the entry point) moves REGISTRY_PASSWORD out of the environment (where `.env` or the caller
put it) into this module, so dockerd, the registry or any other process crossdock starts never
inherits it. The password only ever travels through `docker login --password-stdin` into a private,
temporary Docker config that is deleted when the task ends, and through HTTP Authorization headers
that are not forwarded on redirects. COSIGN_PASSWORD (the signing key's password) is taken out the same
way and handed only to cosign's own process, in its environment (tasks/engine/cosign.py); cargo's
registry tokens (CARGO_REGISTRIES_<NAME>_TOKEN, CARGO_REGISTRY_TOKEN) too, handed only to the compile steps
as a BuildKit secret file (tasks/steps/private.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import CrossdockError
from ..core.private_sources import git_credential_entries

USER_ENV = "REGISTRY_USER"
PASSWORD_ENV = "REGISTRY_PASSWORD"
COSIGN_PASSWORD_ENV = "COSIGN_PASSWORD"  # the signing key's password: only cosign's own process gets it
# git's credential-store lines (https://USER:TOKEN@HOST) for git dependencies over HTTPS: compile steps only
GIT_CREDENTIALS_ENV = "CROSSDOCK_GIT_CREDENTIALS"
_store: dict[str, str] = {}


def is_cargo_token(name: str) -> bool:
    """cargo's registry token variables: CARGO_REGISTRIES_<NAME>_TOKEN and crates.io's CARGO_REGISTRY_TOKEN."""
    return name == "CARGO_REGISTRY_TOKEN" or (name.startswith("CARGO_REGISTRIES_") and name.endswith("_TOKEN"))


def take_from_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Called once by the entry point, after `.env` is loaded."""
    for name in [PASSWORD_ENV, COSIGN_PASSWORD_ENV, GIT_CREDENTIALS_ENV, *(n for n in environ if is_cargo_token(n))]:
        if name in environ:
            _store[name] = environ.pop(name)


def cargo_tokens() -> dict[str, str]:
    """The cargo registry tokens of `.env` or the environment (only the compile steps get them, as a build
    secret: tasks/steps/private.py)."""
    found = {n: v for n, v in os.environ.items() if is_cargo_token(n)}
    return {**found, **{n: v for n, v in _store.items() if is_cargo_token(n)}}


def credentials() -> tuple[str, str]:
    user = os.environ.get(USER_ENV, "")
    password = _store.get(PASSWORD_ENV, os.environ.get(PASSWORD_ENV, ""))
    return user, password


def signing_password() -> str:
    """The cosign key's password (COSIGN_PASSWORD from .env or the environment; '' if unset)."""
    return _store.get(COSIGN_PASSWORD_ENV, os.environ.get(COSIGN_PASSWORD_ENV, ""))


def git_credentials() -> str:
    """CROSSDOCK_GIT_CREDENTIALS of `.env` or the environment: git credential-store lines ('' if unset)."""
    return _store.get(GIT_CREDENTIALS_ENV, os.environ.get(GIT_CREDENTIALS_ENV, ""))


def secret_values() -> list[str]:
    """Every secret crossdock holds, for redaction (each git credential line's password too)."""
    git = [password for _, password in git_credential_entries(git_credentials())]
    return [v for v in (credentials()[1], signing_password(), *cargo_tokens().values(), *git) if v]


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
