"""The adapter for cosign (signatures and attestations in the registry, offline: no transparency log).

Every cosign command crossdock runs goes through ``Cosign``. Signing commands get the key's password as
COSIGN_PASSWORD in *their own* environment only (never on a command line, never in crossdock's environment,
which tasks.py emptied of it); cosign never prompts (stdin closed). Registries on this machine speak plain
HTTP: for those, ``--allow-http-registry``. Nothing is uploaded to a transparency log (``--tlog-upload=false``)
and verification skips it (``--insecure-ignore-tlog``): trust comes from the public key alone.
"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoke import Context

from ..core.errors import CrossdockError
from .docker import Ran, last_line
from .registry import Repo, plain_http

TIMEOUT = 300  # seconds per cosign command


class CosignError(CrossdockError):
    """cosign is missing or refused; one line naming what and the fix."""


def _http(ref: str) -> list[str]:
    return ["--allow-http-registry"] if plain_http(Repo.parse(ref).host) else []


@dataclass(frozen=True)
class Attestation:
    """One verified in-toto statement attached to an image."""

    predicate_type: str
    subjects: tuple[str, ...]  # sha256:... digests the statement is about
    predicate: dict


class Cosign:
    def __init__(self, c: Context, *, password: str = "", binary: str = "cosign"):
        self.c = c
        self.password = password
        self.binary = binary

    @property
    def dry(self) -> bool:
        return bool(self.c.config.run.dry)

    def require(self) -> None:
        if shutil.which(self.binary) is None:
            raise CosignError("cosign is not installed: run scripts/provision-local.sh cosign (Debian trixie's "
                              "cosign, which needs only libc), or put a cosign 2.x on PATH")

    def _run(self, args: list[str], *, secret: bool = False, read: bool = False) -> Ran:
        """``read``: runs even under ``inv --dry``. ``secret``: COSIGN_PASSWORD in cosign's environment."""
        options: dict[str, Any] = dict(hide=True, warn=True, in_stream=False, timeout=TIMEOUT)
        if read:
            options.update(echo=False, dry=False)
        # Always set, even empty: with no COSIGN_PASSWORD cosign would prompt on a terminal.
        options["env"] = {"COSIGN_PASSWORD": self.password if secret else ""}
        r = self.c.run(shlex.join([self.binary, *args]), **options)
        if r is None:
            return Ran(ok=True)
        ran = Ran(ok=r.ok, stdout=r.stdout, stderr=r.stderr, exited=r.exited)
        if self.password and self.password in ran.stdout + ran.stderr:  # never print it, whatever cosign says
            ran = Ran(ok=ran.ok, stdout=ran.stdout.replace(self.password, "***"),
                      stderr=ran.stderr.replace(self.password, "***"), exited=ran.exited)
        return ran

    def public_key(self, key: str, dest: Path) -> None:
        """Derive the public key of ``key`` into ``dest`` (also proves the password opens the key)."""
        r = self._run(["public-key", "--key", key, "--outfile", str(dest)], secret=True, read=True)
        if not r.ok or not dest.is_file():
            raise CosignError(f"cannot open the signing key {key}: {last_line(r.stderr or r.stdout)} "
                              f"(is COSIGN_PASSWORD, in .env or the environment, its password?)")

    def sign(self, key: str, ref: str) -> Ran:
        """Sign ``repo@index-digest`` and, ``--recursive``, every manifest it lists. Offline."""
        return self._run(["sign", "--key", key, "--tlog-upload=false", "--recursive", "--yes", *_http(ref), ref],
                         secret=True)

    def attest_sbom(self, key: str, ref: str, predicate: Path) -> Ran:
        """Attach a CycloneDX SBOM to ``repo@platform-digest`` as a signed attestation (replacing an older one)."""
        return self._run(["attest", "--key", key, "--type", "cyclonedx", "--predicate", str(predicate),
                          "--tlog-upload=false", "--replace", "--yes", *_http(ref), ref], secret=True)

    def verify(self, public_key: Path, ref: str) -> Ran:
        return self._run(["verify", "--key", str(public_key), "--insecure-ignore-tlog", "--output", "json",
                          *_http(ref), ref], read=True)

    def verify_sbom(self, public_key: Path, ref: str) -> tuple[Ran, list[Attestation]]:
        """The signed CycloneDX attestations of ``ref`` that the key verifies."""
        r = self._run(["verify-attestation", "--key", str(public_key), "--type", "cyclonedx",
                       "--insecure-ignore-tlog", *_http(ref), ref], read=True)
        return r, parse_attestations(r.stdout) if r.ok else []


def parse_attestations(text: str) -> list[Attestation]:
    """DSSE envelopes (one JSON object a line, as ``cosign verify-attestation`` prints them) -> statements."""
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            envelope = json.loads(line)
            statement = json.loads(base64.b64decode(envelope["payload"]))
        except (ValueError, KeyError, TypeError):
            continue
        subjects = tuple(f"sha256:{s.get('digest', {}).get('sha256', '')}" for s in statement.get("subject", []))
        predicate = statement.get("predicate")
        result.append(Attestation(predicate_type=statement.get("predicateType", ""), subjects=subjects,
                                  predicate=predicate if isinstance(predicate, dict) else {}))
    return result
