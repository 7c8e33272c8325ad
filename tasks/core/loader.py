"""glibc's library search, as its loader does it, over an image's files read natively (nothing runs).

``resolve_libraries`` answers, for an ELF binary of a platform: its interpreter, every ``DT_NEEDED`` library
(and theirs, transitively) where the loader would find it in the image, and what could not be found and why.
``checks.check_libraries`` folds that answer into a smoke check. Pure: the image's files arrive as an object
with ``kind``, ``realpath``, ``is_file`` and ``read`` (``checks.ImageFiles``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .elf import ElfError, ElfInfo, parse_elf, parse_ld_so_cache
from .platforms import Platform

MAX_LIBRARIES = 1024  # a bound on the walk; real programs need a few dozen
LD_SO_CACHE = "/etc/ld.so.cache"


class Files(Protocol):
    def kind(self, path: str) -> str: ...  # file | dir | symlink | dangling | missing | other
    def realpath(self, path: str) -> str | None: ...
    def is_file(self, path: str) -> bool: ...
    def read(self, path: str) -> bytes: ...


@dataclass(frozen=True)
class Resolution:
    interpreter: str
    found: tuple[tuple[str, str], ...]  # (name as needed, where the loader finds it), in load order
    problems: tuple[str, ...]  # what the loader would fail on


def default_library_dirs(p: Platform) -> tuple[str, ...]:
    """The loader's own directories for the platform (Debian's multiarch ones first)."""
    dirs = (f"/lib/{p.multiarch}", f"/usr/lib/{p.multiarch}", "/lib", "/usr/lib")
    return dirs + (("/lib64", "/usr/lib64") if p.elf_class == 64 else ())


def describe_elf(machine: int, elf_class: int, endian: str) -> str:
    from .platforms import PLATFORMS

    names = [q.name for q in PLATFORMS if (q.elf_machine, q.elf_class, q.endian.value) == (machine, elf_class, endian)]
    return f"machine {machine} ({'/'.join(names) or 'unknown'}), {elf_class}-bit, {endian}-endian"


def incompatible(binary: ElfInfo, other: ElfInfo) -> str:
    """'' when the loader would take ``other`` for ``binary``; otherwise what ``other`` is."""
    if (other.machine, other.elf_class, other.endian) != (binary.machine, binary.elf_class, binary.endian):
        return describe_elf(other.machine, other.elf_class, other.endian)
    if binary.arm_float_abi and other.arm_float_abi and other.arm_float_abi != binary.arm_float_abi:
        return f"{other.arm_float_abi}-float"
    return ""


@dataclass(frozen=True)
class _Object:
    """A loaded ELF object: where it was found, what it is, and the objects that caused it to be loaded
    (for DT_RPATH, which the loader also takes from the loader chain up to the binary)."""

    path: str
    elf: ElfInfo
    origin: str
    chain: tuple[tuple[ElfInfo, str], ...]  # (object, its $ORIGIN): this one first, then its loader, ...


def expand(dirs: Sequence[str], origin: str, p: Platform) -> list[str]:
    """$ORIGIN and $LIB in DT_RUNPATH / DT_RPATH entries (glibc's dynamic string tokens); relative entries
    are taken from the root (the loader would take them from the working directory)."""
    out = []
    for d in dirs:
        if "ORIGIN" in d and not origin:
            continue
        d = d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        d = d.replace("${LIB}", f"lib/{p.multiarch}").replace("$LIB", f"lib/{p.multiarch}")
        out.append(d if d.startswith("/") else "/" + d)
    return out


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(item.rstrip("/") or "/" for item in items))


class _Search:
    """One binary's search: the ELF files read so far, and the image's ld.so.cache once it is needed."""

    def __init__(self, p: Platform, binary: ElfInfo, files: Files, ld_library_path: Sequence[str]):
        self.p, self.binary, self.files = p, binary, files
        self.ld_library_path = [d for d in ld_library_path if d]
        self.defaults = list(default_library_dirs(p))
        self.parsed: dict[str, ElfInfo | str] = {}  # resolved path -> its ELF facts, or why it cannot be read
        self.cache: list[tuple[str, str]] | None = None

    def elf_at(self, real: str) -> ElfInfo | str:
        if real not in self.parsed:
            try:
                self.parsed[real] = parse_elf(self.files.read(real))
            except ElfError as e:
                self.parsed[real] = f"not a usable ELF file ({e})"
            except (OSError, ValueError) as e:
                self.parsed[real] = f"unreadable ({type(e).__name__}: {e})"
        return self.parsed[real]

    def usable(self, path: str) -> tuple[ElfInfo | None, str, str]:
        """The ELF facts of a candidate the loader would take, or (None, why not, the real path the reason
        is about); why is '' when the path is simply absent."""
        kind = self.files.kind(path)
        if kind == "dangling":
            parent = posixpath.dirname(path)
            return None, f"{path} is a dangling symlink", posixpath.join(self.files.realpath(parent) or parent,
                                                                         posixpath.basename(path))
        if kind != "file":
            return None, "", ""
        real = self.files.realpath(path) or path
        elf = self.elf_at(real)
        if isinstance(elf, str):
            return None, f"{path} is {elf}", real
        other = incompatible(self.binary, elf)
        return (None, f"{path} is {other}", real) if other else (elf, "", real)

    def cached(self, name: str) -> list[str]:
        """Where the image's /etc/ld.so.cache says ``name`` is (read once, when first asked)."""
        if self.cache is None:
            self.cache = []
            if self.files.is_file(LD_SO_CACHE):
                try:
                    self.cache = parse_ld_so_cache(self.files.read(LD_SO_CACHE), self.binary.endian)
                except (OSError, ValueError):
                    self.cache = []
        return [path for key, path in self.cache if key == name]

    def directories(self, requester: _Object) -> list[str]:
        """DT_RPATH of the loader chain (when the requester has no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH,
        then the platform's own directories."""
        dirs: list[str] = []
        if not requester.elf.runpath:
            for obj, obj_origin in requester.chain:
                if not obj.runpath:
                    dirs += expand(obj.rpath, obj_origin, self.p)
        dirs += self.ld_library_path
        dirs += expand(requester.elf.runpath, requester.origin, self.p)
        return _unique(dirs + self.defaults)

    def find(self, name: str, requester: _Object) -> tuple[tuple[str, ElfInfo] | None, list[str], dict[str, str]]:
        """(where the loader takes ``name`` and what it is, or None; the places searched; why candidates were
        skipped, once per real file). The cache is asked only when the directories miss: it lists what they
        hold, so asking it after them finds the same libraries."""
        if "/" in name:
            candidates, later, searched = [name if name.startswith("/") else "/" + name], None, [name]
        else:
            searched = self.directories(requester)
            candidates, later = [posixpath.join(d, name) for d in searched], name
        notes: dict[str, str] = {}
        tried: set[str] = set()
        batches: list[Callable[[], list[str]]] = [lambda: candidates]
        if later is not None:
            batches.append(lambda: self.cached(later))
        for batch in batches:
            for path in batch():
                if path in tried:
                    continue
                tried.add(path)
                elf, why, real = self.usable(path)
                if elf is not None:
                    return (path, elf), searched, notes
                if why:
                    notes.setdefault(real, why)
        if later is not None and self.cache:
            searched = [*searched, LD_SO_CACHE]
        return None, searched, notes


def _interpreter_problems(binary: ElfInfo, files: Files) -> list[str]:
    interp = binary.interpreter
    if not interp:
        return ["the binary needs shared libraries but names no interpreter (PT_INTERP)"]
    kind = files.kind(interp)
    if kind == "file":
        return []
    what = {"missing": "not found in the image", "dangling": "is a dangling symlink"}
    return [f"interpreter {interp} " + what.get(kind, f"is not a regular file ({kind})")]


def resolve_libraries(p: Platform, binary: ElfInfo, files: Files, *, binary_path: str = "",
                      ld_library_path: Sequence[str] = ()) -> Resolution:
    """The binary's ELF interpreter and every ``DT_NEEDED`` library, and theirs in turn, searched as glibc's
    loader does: DT_RPATH (of the requesting object and the objects that loaded it, when the requester has
    no DT_RUNPATH), ``LD_LIBRARY_PATH`` (the image's Env), DT_RUNPATH, the platform's default directories,
    ``/etc/ld.so.cache``; ``$ORIGIN`` expanded, links followed inside the image, and a file of another
    machine, class, byte order or float ABI skipped as the loader skips it. ``binary_path`` is where the
    binary is (its $ORIGIN). Only the files the loader would open are read."""
    search = _Search(p, binary, files, ld_library_path)
    problems = _interpreter_problems(binary, files)
    loaded: dict[str, str] = {}  # names (as needed, sonames) -> where the object was found
    if binary.interpreter:
        loaded[posixpath.basename(binary.interpreter)] = binary.interpreter  # found or not: reported once
    real_binary = files.realpath(binary_path) if binary_path else None
    origin = posixpath.dirname(real_binary or binary_path) if binary_path else ""
    top = _Object(binary_path or "the binary", binary, origin, ((binary, origin),))
    queue: list[tuple[str, _Object]] = [(name, top) for name in binary.needed]
    found: list[tuple[str, str]] = []
    seen: set[str] = set()  # resolved paths already walked
    while queue:
        name, requester = queue.pop(0)
        if name in loaded:
            continue
        if len(found) >= MAX_LIBRARIES:
            problems.append(f"stopped after {MAX_LIBRARIES} libraries")
            break
        hit, searched, notes = search.find(name, requester)
        if hit is None:
            by = "" if requester is top else f", needed by {requester.path}"
            problems.append(f"{name} not found (searched {', '.join(searched)}{by})" +
                            (f" [skipped: {' and '.join(notes.values())}]" if notes else ""))
            continue
        path, elf = hit
        loaded[name] = path
        if elf.soname:
            loaded.setdefault(elf.soname, path)
        found.append((name, path))
        real = files.realpath(path) or path
        if real not in seen:
            seen.add(real)
            lib_origin = posixpath.dirname(path)
            obj = _Object(path, elf, lib_origin, ((elf, lib_origin), *requester.chain))
            queue.extend((needed, obj) for needed in elf.needed)
    return Resolution(interpreter=binary.interpreter, found=tuple(found), problems=tuple(problems))
