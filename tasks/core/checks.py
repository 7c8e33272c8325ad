"""Smoke-test checks for one platform of an image, as pure functions, and their JUnit report.

Each ``check_*`` takes what an adapter gathered (a manifest entry, ``docker image inspect`` output, an ELF
header, a run's exit code and output) and returns ``Check`` rows that say what was expected and found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .elf import ElfInfo, glibc_key, highest
from .platforms import Platform

REQUIRED_LABELS = ("org.opencontainers.image.version", "org.opencontainers.image.revision",
                   "org.opencontainers.image.created")
SOURCE_LABEL = "org.opencontainers.image.source"
EMULATOR_HINT = ("exit {code}{signal} under QEMU: this is often the emulator, not the binary "
                 "(known QEMU bugs raise SIGSEGV/SIGILL); try another qemu-user-static version or real hardware")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class PlatformSmoke:
    platform: Platform
    digest: str
    checks: tuple[Check, ...] = ()
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return self.platform.docker

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


@dataclass(frozen=True)
class SmokeResult:
    """What `inv smoke` found for every platform of one image (JSON only for the report file)."""

    image: str
    platforms: tuple[PlatformSmoke, ...]

    @property
    def ok(self) -> bool:
        return bool(self.platforms) and all(r.ok for r in self.platforms)

    @property
    def failed(self) -> tuple[PlatformSmoke, ...]:
        return tuple(r for r in self.platforms if not r.ok)

    def to_json(self) -> dict:
        return {"image": self.image, "ok": self.ok,
                "platforms": [{"platform": r.label, "digest": r.digest, "ok": r.ok, "seconds": round(r.seconds, 1),
                               "checks": [c.__dict__ for c in r.checks]} for r in self.platforms]}


@dataclass(frozen=True)
class Expectations:
    """What the build recorded (empty strings: unknown, only presence is checked)."""

    version: str = ""  # the image's version label
    revision: str = ""
    created: str = ""
    source: str | None = None  # None: not recorded
    package_version: str = ""  # what `--version` prints (Cargo's version)
    extra: Mapping[str, str] = field(default_factory=dict)




def _platform_of(config: Mapping[str, Any]) -> str:
    parts = [config.get("Os", ""), config.get("Architecture", "")]
    if config.get("Variant"):
        parts.append(config["Variant"])
    return "/".join(parts)


def check_metadata(p: Platform, config: Mapping[str, Any], expect: Expectations) -> list[Check]:
    """``config`` is one element of ``docker image inspect`` output."""
    checks = []
    found = _platform_of(config)
    # Docker leaves arm64's variant out (or says v8); arm/v7 must say v7.
    same = found == p.docker or (p.name == "arm64" and found == "linux/arm64/v8")
    checks.append(Check("platform", same, f"image config says {found or '(nothing)'}, manifest entry "
                                          f"{p.docker}"))
    user = (config.get("Config") or {}).get("User") or ""
    uid = user.split(":")[0]
    non_root = bool(user) and uid not in ("0", "root")
    checks.append(Check("non-root user", non_root, f"User={user!r}" + ("" if non_root else
                                                                      ": the image runs as root")))
    entrypoint = (config.get("Config") or {}).get("Entrypoint") or []
    checks.append(Check("entrypoint", bool(entrypoint), f"Entrypoint={entrypoint}"))
    labels = (config.get("Config") or {}).get("Labels") or {}
    wanted = {"org.opencontainers.image.version": expect.version,
              "org.opencontainers.image.revision": expect.revision,
              "org.opencontainers.image.created": expect.created}
    for key in REQUIRED_LABELS:
        value = labels.get(key, "")
        want = wanted[key]
        short = key.rsplit(".", 1)[-1]
        if not value:
            checks.append(Check(f"label {short}", False, f"label {key} is missing"))
        elif want and value != want:
            checks.append(Check(f"label {short}", False, f"{key}={value!r}, the build recorded {want!r}"))
        else:
            checks.append(Check(f"label {short}", True, f"{key}={value!r}"))
    if expect.source is not None:
        value = labels.get(SOURCE_LABEL, "")
        checks.append(Check("label source", value == expect.source,
                            f"{SOURCE_LABEL}={value!r}" + ("" if value == expect.source else
                                                         f", the build recorded {expect.source!r}")))
    return checks


def check_binary(p: Platform, binary: ElfInfo, libc: ElfInfo | None) -> list[Check]:
    """The shipped binary's ELF header against the platform table, and its glibc needs against the image."""
    from .platforms import PLATFORMS

    def describe(machine: int, elf_class: int, endian: str) -> str:
        names = [q.name for q in PLATFORMS if (q.elf_machine, q.elf_class, q.endian.value) == (machine, elf_class,
                                                                                                endian)]
        return f"machine {machine} ({'/'.join(names) or 'unknown'}), {elf_class}-bit, {endian}-endian"

    got = (binary.machine, binary.elf_class, binary.endian)
    want = (p.elf_machine, p.elf_class, p.endian.value)
    checks = [Check("ELF machine", got == want, f"binary is {describe(*got)}; {p.docker} needs {describe(*want)}")]
    if p.arm_float_abi:
        checks.append(Check("ARM float ABI", binary.arm_float_abi == p.arm_float_abi,
                            f"binary is {binary.arm_float_abi or 'unstated'}-float; {p.docker} needs "
                            f"{p.arm_float_abi}-float"))
        if binary.arm_arch:
            # v7 boards run v6 code; a v6 board cannot run v7 code.
            too_new = p.variant == "v6" and binary.arm_arch.startswith(("v7", "v8"))
            checks.append(Check("ARM architecture", not too_new,
                                f"binary targets ARM {binary.arm_arch}; {p.docker} runs up to ARM "
                                f"{p.variant}" if too_new else f"binary targets ARM {binary.arm_arch}"))
    needed = highest(binary.glibc_needed)
    if libc is None:
        checks.append(Check("glibc", not needed, f"binary needs {needed}, but the image has no libc.so.6"
                            if needed else "binary needs no glibc (static)"))
    else:
        available = highest(libc.glibc_defined)
        ok = not needed or (bool(available) and glibc_key(needed) <= glibc_key(available))
        checks.append(Check("glibc", ok, f"binary needs {needed or 'no versioned glibc'}, the runtime image has "
                                         f"{available or 'an unversioned libc'}" +
                            ("" if ok else ": build against the runtime's Debian release (same glibc)")))
    return checks


def emulator_hint(exit_code: int, output: str) -> str:
    signals = {139: " (SIGSEGV)", 132: " (SIGILL)"}
    if exit_code in signals or "uncaught target signal" in output:
        return EMULATOR_HINT.format(code=exit_code, signal=signals.get(exit_code, ""))
    return ""


def expected_output(pattern: str, *, version: str, p: Platform) -> str:
    """The smoke setting's text for one platform: ``{version}`` and ``{arch}`` filled in. With the version
    unknown (an image tested without its build report) only the rest is required."""
    return pattern.replace("{version}", version).replace("{arch}", p.rust_arch)


def check_run(p: Platform, *, exit_code: int, output: str, expect: Expectations, command: str,
              emulated: bool, pattern: str = "{version}") -> Check:
    """The smoke command's result: exit 0, and the output contains the expected text (the smoke_expect
    setting: by default the package version; a project may add the platform's ARCH, as the example does)."""
    text = output.strip().replace("\n", " | ")[:300]
    if exit_code != 0:
        hint = emulator_hint(exit_code, output) if emulated else ""
        return Check("run", False, f"`{command}` exited {exit_code}: {text}" + (f". Hint: {hint}" if hint else ""))
    wanted = expected_output(pattern, version=expect.package_version, p=p).strip()
    if wanted and wanted not in output:
        return Check("run", False, f"`{command}` printed {text!r}, which lacks {wanted!r}")
    return Check("run", True, f"`{command}` printed {text!r}" + (f" (contains {wanted!r})" if wanted else ""))


def junit_xml(results: Sequence[PlatformSmoke], *, image: str) -> str:
    """One test case per platform; a failure message names every failed check."""
    from xml.sax.saxutils import escape, quoteattr

    failures = sum(1 for r in results if not r.ok)
    total = sum(r.seconds for r in results)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="crossdock smoke" tests="{len(results)}" failures="{failures}" errors="0" '
             f'skipped="0" time="{total:.1f}">',
             f"  <properties><property name=\"image\" value={quoteattr(image)}/></properties>"]
    for r in results:
        lines.append(f'  <testcase classname="smoke" name={quoteattr(r.label)} time="{r.seconds:.1f}">')
        if not r.ok:
            message = "; ".join(f"{c.name}: {c.detail}" for c in r.failures) or "no checks ran"
            lines.append(f"    <failure message={quoteattr(message[:1000])}>{escape(message)}</failure>")
        out = "\n".join(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in r.checks)
        lines.append(f"    <system-out>{escape(out)}</system-out>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"
