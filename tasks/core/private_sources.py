"""The private sources a project's crates come from, and the credentials cargo needs for them.

A project names its registries in ``.cargo/config.toml`` (``[registries.NAME] index = "sparse+https://..."``)
and its lock file records where every crate came from (``source = "sparse+https://...`` or
``git+ssh://git@host/org/crate.git?...#rev``). cargo takes a registry's token from
``CARGO_REGISTRIES_<NAME>_TOKEN`` (the name upper-cased, ``-`` as ``_``) and crates.io's from
``CARGO_REGISTRY_TOKEN``; git over SSH authenticates through the SSH agent. Pure: texts in, facts out
(``probe_private_sources`` in the steps reads the files and the environment).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import CrossdockError

CRATES_IO_TOKEN_ENV = "CARGO_REGISTRY_TOKEN"


class PrivateSourceError(CrossdockError):
    """A private source the build needs a credential for has none; the message names the variable."""


@dataclass(frozen=True)
class Registry:
    name: str
    index: str  # as the config writes it: sparse+https://host/path/ or a git index URL
    used: bool  # the lock file has crates from it

    @property
    def token_env(self) -> str:
        return token_env(self.name)

    @property
    def host(self) -> str:
        return urlsplit(self.index.removeprefix("sparse+").removeprefix("registry+")).hostname or ""


@dataclass(frozen=True)
class GitSource:
    url: str  # ssh://git@host:port/org/crate.git (without the lock file's query and fragment)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 22


@dataclass(frozen=True)
class PrivateSources:
    registries: tuple[Registry, ...] = ()
    ssh_git: tuple[GitSource, ...] = ()
    https_git: tuple[GitSource, ...] = ()  # git+https:// (and http://) sources: a credential may be needed

    @property
    def any(self) -> bool:
        """Whether the compile steps may need a credential: a registry is declared, or a git source is fetched."""
        return bool(self.registries or self.ssh_git or self.https_git)

    @property
    def used_registries(self) -> tuple[Registry, ...]:
        return tuple(r for r in self.registries if r.used)

    @property
    def git_tools(self) -> tuple[str, ...]:
        """What the compile steps fetch these git sources with (cargo's net.git-fetch-with-cli: the git CLI,
        which takes the SSH agent and credential helpers), added to the build machine's tools."""
        return ("git", "openssh-client") if self.ssh_git else ("git",) if self.https_git else ()


# docker/Dockerfile's secret ids (platform.sh: private_sources); the compile steps mount them and the SSH agent.
CREDENTIALS_SECRET = "cargo-credentials"
KNOWN_HOSTS_SECRET = "ssh-known-hosts"
GIT_CREDENTIALS_SECRET = "git-credentials"
SECRET_IDS = (CREDENTIALS_SECRET, GIT_CREDENTIALS_SECRET, KNOWN_HOSTS_SECRET)


def token_env(registry: str) -> str:
    """cargo's variable for a registry's token (``my-corp`` -> ``CARGO_REGISTRIES_MY_CORP_TOKEN``)."""
    return f"CARGO_REGISTRIES_{registry.upper().replace('-', '_')}_TOKEN"


def _normal(index: str) -> str:
    return index.removeprefix("registry+").rstrip("/")


def parse_private_sources(config_text: str, lock_text: str) -> PrivateSources:
    """The registries ``.cargo/config.toml`` declares (which of them the lock file uses) and the git
    dependencies the lock file fetches over SSH. Unreadable TOML reads as none (cargo reports it itself)."""
    try:
        config = tomllib.loads(config_text) if config_text else {}
    except tomllib.TOMLDecodeError:
        config = {}
    try:
        lock = tomllib.loads(lock_text) if lock_text else {}
    except tomllib.TOMLDecodeError:
        lock = {}
    sources = {str(p.get("source", "")) for p in lock.get("package", []) if isinstance(p, dict)}
    used = {_normal(s) for s in sources if s.startswith(("registry+", "sparse+"))}
    registries = tuple(
        Registry(name=name, index=str(table["index"]), used=_normal(str(table["index"])) in used)
        for name, table in sorted((config.get("registries") or {}).items())
        if isinstance(table, dict) and table.get("index"))

    def git(*schemes: str) -> tuple[GitSource, ...]:
        urls = {s.removeprefix("git+").split("?", 1)[0].split("#", 1)[0] for s in sources
                if s.startswith(tuple(f"git+{scheme}://" for scheme in schemes))}
        return tuple(GitSource(url) for url in sorted(urls))

    return PrivateSources(registries=registries, ssh_git=git("ssh"), https_git=git("https", "http"))


def git_credential_entries(store: str) -> list[tuple[str, str]]:
    """(host[:port], secret) of each git credential-store line (``https://USER:TOKEN@host``, space- or
    newline-separated) that has a login: the password, or a lone token in the user's place."""
    entries = []
    for line in store.split():
        parts = urlsplit(line)
        secret = parts.password if parts.password is not None else parts.username
        if secret and parts.hostname:
            entries.append((parts.netloc.rsplit("@", 1)[-1], secret))
    return entries


def missing_credentials(sources: PrivateSources, environ: dict[str, str], *, auth_required: set[str],
                        agent: bool) -> list[str]:
    """One line per credential the build needs and lacks: a used registry that requires authentication
    (``auth_required``: the names whose index says so) without its token, an SSH git host without an agent."""
    problems = [f"registry {r.name} ({r.index}) requires a token: set {r.token_env} in the environment or .env"
                for r in sources.used_registries if r.name in auth_required and not environ.get(r.token_env)]
    if sources.ssh_git and not agent:
        hosts = ", ".join(sorted({g.host for g in sources.ssh_git}))
        problems.append(f"git dependencies over SSH ({hosts}) need an SSH agent holding the key: start one "
                        f"(eval $(ssh-agent); ssh-add KEY) so that SSH_AUTH_SOCK is set")
    return problems


def credential_lines(sources: PrivateSources, environ: dict[str, str]) -> list[str]:
    """``NAME=value`` lines of every registry token the build gets (the secret file's content, never a build
    argument): each used registry's variable that is set, and crates.io's."""
    names = [r.token_env for r in sources.used_registries] + [CRATES_IO_TOKEN_ENV]
    return [f"{name}={environ[name]}" for name in dict.fromkeys(names) if environ.get(name)]
