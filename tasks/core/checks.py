"""Smoke-test checks for one platform of an image, as pure functions, and their JUnit report.

Each ``check_*`` takes what an adapter gathered (a manifest entry, ``docker image inspect`` output, an ELF
header, the image's files, a run's exit code and output) and returns ``Check`` rows that say what was
expected and found.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .elf import ElfInfo, arm_arch_rank, glibc_key, highest
from .loader import describe_elf, resolve_libraries
from .platforms import ELF_ABI_PPC64_V2, Platform, elf_abi_of

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
    attestation: str = ""  # the provenance attestation manifest the index keeps for this platform

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

    @property
    def unattested(self) -> tuple[PlatformSmoke, ...]:
        """Platforms the index keeps no attestation for."""
        return tuple(r for r in self.platforms if not r.attestation)

    def to_json(self) -> dict:
        return {"image": self.image, "ok": self.ok,
                "unattested": [r.label for r in self.unattested],
                "platforms": [{"platform": r.label, "digest": r.digest, "attestation": r.attestation, "ok": r.ok,
                               "seconds": round(r.seconds, 1), "checks": [c.__dict__ for c in r.checks]}
                              for r in self.platforms]}


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
    describe = describe_elf
    got = (binary.machine, binary.elf_class, binary.endian)
    want = (p.elf_machine, p.elf_class, p.endian.value)
    checks = [Check("ELF machine", got == want, f"binary is {describe(*got)}; {p.docker} needs {describe(*want)}")]
    if p.elf_abi and got == want:
        abi = elf_abi_of(binary.machine, binary.flags)
        ok = abi == p.elf_abi or (abi == "unstated" and p.elf_abi == ELF_ABI_PPC64_V2)
        checks.append(Check("ELF ABI", ok, f"binary's ABI is {abi}; {p.docker} (Debian's {p.debian_arch}) needs "
                                           f"{p.elf_abi}"))
    if p.arm_float_abi:
        checks.append(Check("ARM float ABI", binary.arm_float_abi == p.arm_float_abi,
                            f"binary is {binary.arm_float_abi or 'unstated'}-float; {p.docker} needs "
                            f"{p.arm_float_abi}-float"))
        if binary.arm_arch and p.arm_max_arch:
            # Newer boards run older code; an ARMv5 or v6 board cannot run v7 code.
            too_new = arm_arch_rank(binary.arm_arch) > arm_arch_rank(p.arm_max_arch)
            checks.append(Check("ARM architecture", not too_new,
                                f"binary targets ARM {binary.arm_arch}; {p.docker} runs up to ARM "
                                f"{p.arm_max_arch}" if too_new else f"binary targets ARM {binary.arm_arch}"))
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


# --- the image's files, and the shared libraries the binary needs in them -------------------------------

MAX_SYMLINK_HOPS = 40  # the kernel's limit (ELOOP)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's, for an image without PATH


@dataclass(frozen=True)
class FileEntry:
    """One path of an image: a regular ``file``, a ``dir`` or a ``symlink`` (with its target as stored)."""

    kind: str
    target: str = ""
    size: int = 0


def walk_links(entry_at: Callable[[str], FileEntry | None], path: str, *, follow_last: bool = True) -> str | None:
    """Resolve ``path`` component by component inside an image, as the kernel does in a container: an
    absolute link target starts at the image's root, ``..`` goes up from where a link led and stops at the
    root, more than 40 links is a loop. ``entry_at`` gives the entry at a physical path. None: missing,
    not a directory, or a loop."""
    pending = path.split("/")[::-1]  # a stack: the next component last
    current, hops = "/", 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, name)
        entry = entry_at(candidate)
        if entry is None:
            return None
        rest = any(part not in ("", ".") for part in pending)
        if entry.kind == "symlink" and (rest or follow_last):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return None
            if entry.target.startswith("/"):
                current = "/"
            pending.extend(entry.target.split("/")[::-1])
            continue
        if rest and entry.kind != "dir":
            return None
        current = candidate
    return current


class ImageFiles:
    """An image's file system, read natively (nothing runs): what is at a path (a file, a directory, a
    symbolic link and its target) and a regular file's bytes, fetched only when asked for.

    Two primitives, given by each kind of source: ``lookup`` (the entry at a path whose directories are
    followed but whose last component is not: lstat) and ``read_file`` (the bytes of the regular file at a
    path whose last component is no link). Links resolve inside the image as the kernel resolves them in a
    container: an absolute target starts at the image's root, ``..`` stops there, and more than 40 links
    is a loop."""

    def lookup(self, path: str) -> FileEntry | None:
        raise NotImplementedError

    def read_file(self, path: str) -> bytes:
        raise NotImplementedError

    def resolve(self, path: str) -> str | None:
        """``path`` with its last component followed through every link (directories are followed by
        ``lookup``), or None when something on the way is missing or loops."""
        path = "/" + path.strip("/")
        for _ in range(MAX_SYMLINK_HOPS + 1):
            entry = self.lookup(path)
            if entry is None:
                return None
            if entry.kind != "symlink":
                return path
            path = "/" + posixpath.join(posixpath.dirname(path), entry.target).strip("/")
        return None

    def realpath(self, path: str) -> str | None:
        """The physical path: every link on the way followed, component by component (as the kernel
        does; ``..`` after a link goes up from where the link led). None: missing, not a directory, a loop."""
        return walk_links(self.lookup, path)

    def kind(self, path: str) -> str:
        """``file``, ``dir``, ``other``, ``dangling`` (a link to nothing, or a loop) or ``missing``."""
        real = self.resolve(path)
        if real is not None:
            entry = self.lookup(real)
            return entry.kind if entry is not None else "missing"
        return "dangling" if self.lookup(path) is not None else "missing"

    def is_file(self, path: str) -> bool:
        return self.kind(path) == "file"

    def read(self, path: str) -> bytes:
        """The bytes of the regular file at ``path`` (links followed); FileNotFoundError otherwise."""
        real = self.resolve(path)
        entry = self.lookup(real) if real is not None else None
        if entry is None or entry.kind != "file":
            raise FileNotFoundError(path)
        return self.read_file(real)


class FileTree(ImageFiles):
    """Every path of an image known up front (a ``docker export`` tar, or files in memory), each file's
    bytes read lazily through ``read`` (given the file's own path, every link on the way resolved).

    ``entries`` maps absolute paths ("/usr/lib/aarch64-linux-gnu/libc.so.6") to ``FileEntry``; parents not
    listed count as directories."""

    def __init__(self, entries: Mapping[str, FileEntry], read: Callable[[str], bytes]):
        self.entries: dict[str, FileEntry] = {}
        for path, entry in entries.items():
            self.entries["/" + path.strip("/")] = entry
        for path in list(self.entries):
            parent = posixpath.dirname(path)
            while parent != "/" and parent not in self.entries:
                self.entries[parent] = FileEntry("dir")
                parent = posixpath.dirname(parent)
        self._read = read

    @classmethod
    def in_memory(cls, files: Mapping[str, bytes], symlinks: Mapping[str, str] | None = None) -> FileTree:
        """From file contents and symlink targets (tests, small fixtures)."""
        entries = {path: FileEntry("file", size=len(data)) for path, data in files.items()}
        entries.update({path: FileEntry("symlink", target) for path, target in (symlinks or {}).items()})
        contents = {"/" + path.strip("/"): data for path, data in files.items()}
        return cls(entries, contents.__getitem__)

    def walk(self, path: str, *, follow_last: bool = True) -> str | None:
        """The path in ``entries`` that ``path`` names, every link on the way followed (the last one too
        unless ``follow_last`` is False); None when a component is missing, not a directory, or loops."""
        return walk_links(self.entries.get, path, follow_last=follow_last)

    def realpath(self, path: str) -> str | None:
        return self.walk(path)

    def lookup(self, path: str) -> FileEntry | None:
        real = self.walk(path, follow_last=False)
        if real is None:
            return None
        return FileEntry("dir") if real == "/" else self.entries[real]

    def read_file(self, path: str) -> bytes:
        real = self.walk(path)
        if real is None:
            raise FileNotFoundError(path)
        return self._read(real)


def image_env(config: Mapping[str, Any]) -> dict[str, str]:
    """The image config's ``Env`` as a dict."""
    env = (config.get("Config") or {}).get("Env") or []
    return dict(item.split("=", 1) for item in env if "=" in item)


def program_path(files: ImageFiles, program: str, env: Mapping[str, str], workdir: str = "/") -> str:
    """Where the entrypoint's program is: itself when it has a '/' (from the working directory when
    relative), else the first match on the image's PATH (as Docker looks it up); '' when not found."""
    if "/" in program:
        return program if program.startswith("/") else posixpath.join("/", workdir or "/", program)
    for directory in (env.get("PATH") or DEFAULT_PATH).split(":"):
        candidate = posixpath.join(directory or "/", program)
        if files.is_file(candidate):
            return candidate
    return ""


def check_libraries(p: Platform, binary: ElfInfo, files: ImageFiles, *, binary_path: str = "",
                    ld_library_path: Sequence[str] = ()) -> Check:
    """The binary's interpreter is a file in the image and every shared library it needs (and theirs)
    resolves there, as glibc's loader would find them (``loader.resolve_libraries``)."""
    if not binary.interpreter and not binary.needed:
        return Check("libraries", True, "static: no interpreter, no shared libraries")
    r = resolve_libraries(p, binary, files, binary_path=binary_path, ld_library_path=ld_library_path)
    if r.problems:
        return Check("libraries", False, "; ".join(r.problems))
    listed = ", ".join(f"{name} ({path})" for name, path in r.found)
    return Check("libraries", True, f"interpreter {r.interpreter}; {len(r.found)} libraries found in the image: "
                                    f"{listed or 'none needed'}")


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
