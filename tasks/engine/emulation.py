"""QEMU binfmt_misc: can this machine run a foreign platform's binaries? Needed to run, never to build.

``check_handler`` is pure (the handler file's text in, a problem with its fix out); ``probe_handlers``
reads ``/proc/sys/fs/binfmt_misc``.
"""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass
from pathlib import Path

from ..core.platforms import PLATFORMS, Platform

BINFMT = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class EmulatorProblem:
    platform: Platform
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.platform.docker}: {self.problem}. Fix: {self.fix}"


def host_platform_name(machine: str | None = None) -> str:
    """The table name of the machine we run on (``x86_64`` -> ``amd64``)."""
    m = (machine or host_platform.machine()).lower()
    for p in PLATFORMS:
        if p.uname_m == m or m in p.aliases:
            return p.name
    return m


def is_native(p: Platform, host: str) -> bool:
    """Runs without QEMU: the host's own platform, and 386 on amd64. (Some arm64 CPUs run 32-bit ARM
    natively and some do not, so arm/v7 on arm64 still counts as emulated.)"""
    return p.name == host or (host == "amd64" and p.name == "386")


def handler_field(handler_text: str, name: str) -> str:
    """A field of a binfmt_misc handler file: ``flags: PF`` or ``interpreter /usr/...``."""
    for line in handler_text.splitlines():
        if line.startswith(name + ":") or line.startswith(name + " "):
            return line[len(name) + 1:].strip()
    return ""


def check_handler(p: Platform, *, mounted: bool, handler_text: str | None) -> EmulatorProblem | None:
    """None when the QEMU handler for ``p`` is registered, enabled and has the F (fix-binary) flag."""
    path = BINFMT / p.qemu_handler
    if not mounted:
        return EmulatorProblem(p, f"binfmt_misc is not mounted at {BINFMT}",
                               f"mount -t binfmt_misc binfmt_misc {BINFMT} (then register QEMU, e.g. "
                               f"scripts/provision-local.sh)")
    if handler_text is None:
        return EmulatorProblem(p, f"no QEMU handler {p.qemu_handler} is registered",
                               "apt-get install qemu-user-static binfmt-support (or scripts/provision-local.sh); "
                               "elsewhere: docker run --privileged --rm tonistiigi/binfmt --install "
                               f"{p.arch}")
    lines = handler_text.splitlines()
    if not lines or lines[0].strip() != "enabled":
        return EmulatorProblem(p, f"the QEMU handler {p.qemu_handler} is disabled", f"echo 1 > {path}")
    if "F" not in handler_field(handler_text, "flags"):
        return EmulatorProblem(p, f"the QEMU handler {p.qemu_handler} lacks the F (fix-binary) flag, so "
                               f"containers get 'exec format error'",
                               f"re-register it with F: update-binfmts --disable {p.qemu_handler} && "
                               f"update-binfmts --enable {p.qemu_handler} (qemu-user-static registers F)")
    return None


def probe_handlers(platforms: tuple[Platform, ...], *, host: str | None = None) -> list[EmulatorProblem]:
    """Problems with the emulators the foreign platforms in ``platforms`` need (empty: all good)."""
    host = host or host_platform_name()
    mounted = (BINFMT / "status").exists()
    problems = []
    for p in platforms:
        if is_native(p, host):
            continue
        path = BINFMT / p.qemu_handler
        text = path.read_text() if mounted and path.exists() else None
        problem = check_handler(p, mounted=mounted, handler_text=text)
        if problem:
            problems.append(problem)
    return problems
