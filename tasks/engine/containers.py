"""The smoke tests' containers: pull a platform's image, create, run, start as a service, read its files
(through the engine's API when it is local, else ``docker export``), remove. Every command through the
``Cli`` runner's ``quiet``; file reads through ``EngineApi``."""

from __future__ import annotations

import shutil
from pathlib import Path

from .api import EngineApi
from .cli import Cli, Ran


class Containers:
    def __init__(self, cli: Cli, api: EngineApi):
        self.cli, self.api = cli, api

    def api_socket(self) -> str:
        """The engine's socket when its API can be used from here ('' otherwise: read files by export)."""
        return self.api.socket()

    def container_path_stat(self, container: str, path: str, *, timeout: float = 60) -> dict | None:
        return self.api.path_stat(container, path, timeout=timeout)

    def container_path_archive(self, container: str, path: str, *, timeout: float = 60) -> bytes:
        return self.api.path_archive(container, path, timeout=timeout)

    def pull(self, ref: str, platform: str, *, timeout: float) -> Ran:
        return self.cli.quiet(["docker", "pull", "--quiet", "--platform", platform, ref], timeout=timeout)

    def image_config(self, ref: str) -> dict:
        """One element of ``docker image inspect`` ({} when it fails)."""
        import json

        r = self.cli.quiet(["docker", "image", "inspect", ref])
        return json.loads(r.stdout)[0] if r.ok else {}

    def create(self, ref: str, platform: str) -> Ran:
        return self.cli.quiet(["docker", "create", "--platform", platform, ref])

    def remove(self, container: str) -> None:
        """The container and its anonymous volumes (an image's VOLUMEs get one each)."""
        self.cli.quiet(["docker", "rm", "--force", "--volumes", container])

    def run(self, ref: str, platform: str, args: list[str] | tuple[str, ...], *, name: str, timeout: float) -> Ran:
        """``docker run --rm`` in the foreground, named so a timed-out run can be removed."""
        return self.cli.quiet(["docker", "run", "--rm", "--name", name, "--platform", platform, ref, *args],
                          timeout=timeout)

    def probe_files(self, ref: str, platform: str, args: tuple[str, ...], *, name: str, timeout: float) -> Ran:
        """Run the spec probe (tasks/core/spec_checks.py) in a container of the image, as its user: the build
        machine's static busybox, copied into the created container, stats the declared paths and writes into
        the declared directories. Not ok, with the fix, when this machine has no static busybox. The caller
        removes the container ``name``."""
        import tempfile

        from ..core.elf import ElfError, parse_elf
        from ..core.spec_checks import PROBE_DIR, PROBE_PATH, probe_create_argv

        probe = shutil.which("busybox") or "/bin/busybox"
        try:
            with open(probe, "rb") as f:
                static = not parse_elf(f.read()).interpreter
        except (OSError, ElfError):
            static = False
        if not static:
            return Ran(ok=False, stderr=f"no static busybox at {probe} to probe the image's files with: apt-get "
                                        f"install busybox-static (scripts/provision-local.sh packages)", exited=-1)
        created = self.cli.quiet(probe_create_argv(ref=ref, platform=platform, args=args, name=name),
                                 timeout=timeout)
        if not created.ok:
            return created
        with tempfile.TemporaryDirectory(prefix="crossdock-probe-") as folder:
            Path(folder).chmod(0o755)  # docker cp gives the directory this mode: the image's user must enter it
            shutil.copy2(probe, Path(folder) / Path(PROBE_PATH).name)
            copied = self.cli.quiet(["docker", "cp", f"{folder}/.", f"{name}:{PROBE_DIR}"], timeout=timeout)
        if not copied.ok:
            return copied
        return self.cli.quiet(["docker", "start", "--attach", name], timeout=timeout)

    def start_service(self, ref: str, platform: str, port: int) -> Ran:
        """``docker run -d`` with the service's port published on loopback only."""
        return self.cli.quiet(["docker", "run", "-d", "--platform", platform, "-p", f"127.0.0.1::{port}", ref])

    def host_port(self, container: str, port: int) -> str:
        mapped = self.cli.quiet(["docker", "port", container, f"{port}/tcp"]).stdout.strip().splitlines()
        return mapped[0].rsplit(":", 1)[-1] if mapped else ""

    def running(self, container: str) -> bool:
        state = self.cli.quiet(["docker", "inspect", "--format", "{{.State.Running}}", container])
        return state.stdout.strip() == "true"

    def logs(self, container: str, *, tail: int = 20) -> str:
        r = self.cli.quiet(["docker", "logs", "--tail", str(tail), container])
        return (r.stdout + r.stderr).strip()

    def export(self, container: str, dest: Path, *, timeout: float) -> Ran:
        """``docker export --output DEST``: a created (never started) container's whole file system as one
        tar file, read natively by the smoke checks (nothing runs, nothing is emulated)."""
        return self.cli.quiet(["docker", "export", "--output", str(dest), container], timeout=timeout)
