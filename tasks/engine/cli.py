"""Running docker commands through invoke: the one place a command is started, read-only or acting.

``Cli.probe`` is for reads (quiet, never fails the task, runs even under ``inv --dry``), ``Cli.quiet`` for the
smoke tests' short-lived containers (the same, named for what it is: it creates and removes containers), and
``Cli.act`` for what changes something (printed instead of run under ``inv --dry``).
"""

from __future__ import annotations

import functools
import io
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from invoke import Context
from invoke.exceptions import CommandTimedOut


def probe_run(c: Context, argv: list[str] | tuple[str, ...], **kwargs: Any):  # -> invoke.Result
    """A read-only command: quiet, never fails the task, and runs even under `inv --dry`."""
    options: dict[str, Any] = dict(hide=True, warn=True, echo=False, in_stream=False, dry=False)
    options.update(kwargs)
    return c.run(shlex.join(argv), **options)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@dataclass(frozen=True)
class Ran:
    """What a command did: exit status and its output (the parts of invoke's Result crossdock reads)."""

    ok: bool
    stdout: str = ""
    stderr: str = ""
    exited: int = 0
    timed_out: bool = False

    @property
    def error(self) -> str:
        return last_line(self.stderr or self.stdout)


def _json_object(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _ran(r: Any) -> Ran:
    return Ran(ok=r.ok, stdout=r.stdout, stderr=r.stderr, exited=r.exited)


class Cli:
    def __init__(self, c: Context):
        self.c = c

    @property
    def dry(self) -> bool:
        return bool(self.c.config.run.dry)

    def probe(self, argv: list[str] | tuple[str, ...], **kwargs: Any) -> Ran:
        """A read: quiet, never fails the task, runs even under ``inv --dry``."""
        env = registry_ca_env()
        if env:
            kwargs.setdefault("env", env)
        try:
            return _ran(probe_run(self.c, argv, **kwargs))
        except CommandTimedOut as e:
            return Ran(ok=False, stderr=f"timed out after {e.timeout:.0f}s", exited=-1, timed_out=True)

    def quiet(self, argv: list[str] | tuple[str, ...], **kwargs: Any) -> Ran:
        """A smoke test's container operation (pull, create, run, remove): quiet like a read, and run under
        ``inv --dry`` too (it changes nothing anyone else sees), but no read."""
        return self.probe(argv, **kwargs)

    def act(self, argv: list[str] | tuple[str, ...], *, stdin: str | None = None, out: IO[str] | None = None,
            hide: bool = True) -> Ran:
        """A command that changes something: printed instead of run under ``inv --dry``."""
        options: dict[str, Any] = dict(warn=True, in_stream=io.StringIO(stdin) if stdin is not None else False)
        if stdin is not None:
            options["echo_stdin"] = False
        if out is not None:
            options.update(out_stream=out, err_stream=out, echo=False, hide=False)
        else:
            options["hide"] = hide
        env = registry_ca_env()
        if env:
            options["env"] = env
        r = self.c.run(shlex.join(argv), **options)
        return _ran(r) if r is not None else Ran(ok=True)


@functools.cache
def registry_ca_env() -> dict[str, str]:
    """For buildx (Go): trust the per-registry CAs the engine trusts (``/etc/docker/certs.d/<host>/ca.crt``)
    on top of the system store, as the engine does, so a registry with a private CA needs one place only.
    Go reads SSL_CERT_DIR as a colon-separated list, and registry directories are named host:port, so the
    CAs are copied into a directory of their own, once per run (cached: every command asks). Empty when
    there are none."""
    import atexit
    import os
    import shutil
    import tempfile

    from .registry import DOCKER_CERTS_D

    try:
        cas = sorted(d / "ca.crt" for d in Path(DOCKER_CERTS_D).iterdir() if (d / "ca.crt").is_file())
    except OSError:
        return {}
    if not cas:
        return {}
    folder = tempfile.mkdtemp(prefix="crossdock-registry-cas-")
    atexit.register(shutil.rmtree, folder, True)
    for i, ca in enumerate(cas):
        shutil.copyfile(ca, os.path.join(folder, f"registry-{i}.crt"))
    system = os.environ.get("SSL_CERT_DIR") or "/etc/ssl/certs"
    return {"SSL_CERT_DIR": f"{system}:{folder}"}
