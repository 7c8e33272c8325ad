"""Private dependencies: what a project fetches from private sources, whether the credentials are here, and
how they reach the compile steps (BuildKit secrets and the SSH agent forward; never build arguments,
never a command line, never the build context).

The probe reads the project's `.cargo/config.toml` and `Cargo.lock` and asks each used sparse registry's
`config.json` (unauthenticated, 5 s) whether it requires authentication; `build_secrets` writes the tokens
to a private file outside the build context for `--secret id=cargo-credentials,src=...` and removes it
when the build ends.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.private_sources import (
    CREDENTIALS_SECRET,
    GIT_CREDENTIALS_SECRET,
    KNOWN_HOSTS_SECRET,
    PrivateSourceError,
    PrivateSources,
    Registry,
    credential_lines,
    missing_credentials,
    parse_private_sources,
)
from ..core.settings import Settings
from ..engine.secrets import cargo_tokens, git_credentials


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def probe_private_sources(project: Path) -> PrivateSources:
    config = _read(project / ".cargo" / "config.toml") or _read(project / ".cargo" / "config")
    return parse_private_sources(config, _read(project / "Cargo.lock"))


def requires_auth(registry: Registry, *, timeout: float = 5.0) -> bool:
    """Whether a sparse registry says it needs a token: its config.json answers 401/403 or has
    ``auth-required: true``. Unreachable or not sparse: False (cargo reports what it meets)."""
    if not registry.index.startswith("sparse+"):
        return False
    url = registry.index.removeprefix("sparse+").rstrip("/") + "/config.json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the project's own index)
            return bool(json.loads(response.read() or b"{}").get("auth-required"))
    except urllib.error.HTTPError as e:
        return e.code in (401, 403)
    except (OSError, ValueError):
        return False


def check_private_sources(sources: PrivateSources, settings: Settings) -> None:
    """Stops the build, before anything runs, when a credential it needs is missing (each named)."""
    if not sources.used_registries and not sources.ssh_git:
        return  # a git source over HTTPS may be public: its credential (if any) is not asked for
    auth = {r.name for r in sources.used_registries if requires_auth(r)}
    problems = missing_credentials(sources, cargo_tokens(), auth_required=auth,
                                   agent=bool(os.environ.get("SSH_AUTH_SOCK")))
    if sources.ssh_git and not settings.ssh_known_hosts.is_file():
        problems.append(f"git dependencies over SSH need known hosts: {settings.ssh_known_hosts} is no file "
                        f"(ssh-keyscan HOST >> it, or set ssh-known-hosts)")
    if problems:
        raise PrivateSourceError("the project's private sources need credentials:\n" +
                                 "\n".join(f"  {p}" for p in problems))


@contextmanager
def build_secrets(sources: PrivateSources, settings: Settings) -> Iterator[tuple[str, ...]]:
    """buildx arguments handing the compile steps what they need: the tokens file, the known hosts, the SSH
    agent (``--ssh default``: buildx forwards SSH_AUTH_SOCK), git's stored HTTPS credentials
    (CROSSDOCK_GIT_CREDENTIALS). Nothing when the project has no private source."""
    folder = Path(tempfile.mkdtemp(prefix="crossdock-secrets-"))  # outside any build context, mode 0700

    def secret(name: str, lines: list[str]) -> list[str]:
        """The secret ``name`` as a file of ``lines`` (mode 0600), or nothing when there are none."""
        if not lines:
            return []
        path = folder / name
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n")
        return ["--secret", f"id={name},src={path}"]

    try:
        args = secret(CREDENTIALS_SECRET, credential_lines(sources, cargo_tokens()))
        if sources.ssh_git:
            args += ["--secret", f"id={KNOWN_HOSTS_SECRET},src={settings.ssh_known_hosts}", "--ssh", "default"]
        if sources.https_git:  # git's credential-store format, a line each
            args += secret(GIT_CREDENTIALS_SECRET, git_credentials().split())
        yield tuple(args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
