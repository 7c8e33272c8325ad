"""Read what a shipped binary is, without running it: ELF header, ARM attributes, glibc versions. Pure.

Enough of the ELF format (System V gABI, ARM ELF ABI) to answer: which machine, class and byte order;
for 32-bit ARM, hard or soft float and the architecture version (v6 vs v7); which ``GLIBC_x.y`` versions
the binary needs (``.gnu.version_r``) and which a libc defines (``.gnu.version_d``); what the dynamic
loader needs to start it: the interpreter (``PT_INTERP``), the shared libraries (``DT_NEEDED``), where to
look for them (``DT_RUNPATH`` / ``DT_RPATH``) and a library's own name (``DT_SONAME``), read from the
``PT_DYNAMIC`` segment as the loader does (the ``.dynamic`` section when there is no such segment).
Also glibc's ``/etc/ld.so.cache`` (library name -> path), which the loader searches before its default
directories.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import CrossdockError

EF_ARM_ABI_FLOAT_SOFT = 0x200
EF_ARM_ABI_FLOAT_HARD = 0x400
SHT_DYNAMIC = 6
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_STRSZ = 10
DT_SONAME = 14
DT_RPATH = 15
DT_RUNPATH = 29
MAX_DYNAMIC_ENTRIES = 65536  # a real .dynamic has a few dozen
LD_SO_CACHE_MAGIC = b"glibc-ld.so.cache1.1"

# Tag_CPU_arch values (ARM ELF ABI addenda): the architecture the code was built for.
ARM_CPU_ARCH = {0: "pre-v4", 1: "v4", 2: "v4T", 3: "v5T", 4: "v5TE", 5: "v5TEJ", 6: "v6", 7: "v6KZ",
                8: "v6T2", 9: "v6K", 10: "v7", 11: "v6-M", 12: "v6S-M", 13: "v7E-M", 14: "v8", 15: "v8-R",
                16: "v8-M.baseline", 17: "v8-M.mainline"}


def arm_arch_rank(name: str) -> int:
    """Order of an ARM architecture name (``v5TE`` < ``v6KZ`` < ``v7``), for 'runs on' comparisons. v6T2
    (Thumb-2, the ARM1156 only) ranks above v6KZ (v6K plus TrustZone: the Raspberry Pi 1 and Zero's ARM1176)."""
    order = ["pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", "v6K", "v6KZ", "v6T2", "v7", "v8"]
    return order.index(name) if name in order else len(order)


class ElfError(CrossdockError):
    """Not an ELF file, or one too damaged to read."""


@dataclass(frozen=True)
class ElfInfo:
    machine: int
    elf_class: int  # 32 or 64
    endian: str  # "little" | "big"
    flags: int
    arm_float_abi: str = ""  # "hard" | "soft" | "" (not ARM / not stated)
    arm_arch: str = ""  # e.g. "v7", from .ARM.attributes Tag_CPU_arch
    glibc_needed: tuple[str, ...] = ()  # e.g. ("GLIBC_2.17", "GLIBC_2.34")
    glibc_defined: tuple[str, ...] = ()  # a libc's own versions
    interpreter: str = ""  # PT_INTERP, e.g. "/lib/ld-linux-aarch64.so.1"; "" for a static binary
    needed: tuple[str, ...] = ()  # DT_NEEDED, in order, e.g. ("libgcc_s.so.1", "libc.so.6")
    runpath: tuple[str, ...] = ()  # DT_RUNPATH, split at ':' (may hold $ORIGIN)
    rpath: tuple[str, ...] = ()  # DT_RPATH (the loader ignores it when there is a DT_RUNPATH)
    soname: str = ""  # DT_SONAME (a library's own name)
    dynamic: bool = False  # has a PT_DYNAMIC segment or .dynamic section (static-pie binaries too)


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    offset: int
    size: int
    link: int


_NUMBERED = re.compile(r"GLIBC_(\d+(?:\.\d+)*)$")


def glibc_key(version: str) -> tuple[int, ...]:
    """``GLIBC_2.34`` -> (2, 34), for comparisons; () for a version that is no release number."""
    m = _NUMBERED.match(version)
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def highest(versions: tuple[str, ...] | list[str]) -> str:
    """The newest numbered glibc version (``GLIBC_2.41``) among ``versions``; the ABI markers trixie's libc
    also defines (``GLIBC_ABI_DT_X86_64_PLT``, ``GLIBC_ABI_DT_RELR``) and ``GLIBC_PRIVATE`` are no release."""
    numbered = [v for v in versions if glibc_key(v)]
    return max(numbered, key=glibc_key) if numbered else ""


def _cstr(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset:end if end >= 0 else len(data)].decode("ascii", "replace")


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _arm_cpu_arch(attrs: bytes) -> str:
    """Tag_CPU_arch from an .ARM.attributes section (format 'A', vendor 'aeabi', file-scope tags)."""
    if not attrs or attrs[0:1] != b"A":
        return ""
    pos = 1
    while pos + 4 <= len(attrs):
        (length,) = struct.unpack_from("<I", attrs, pos)
        end = pos + length
        vendor = _cstr(attrs, pos + 4)
        sub = pos + 4 + len(vendor) + 1
        if vendor == "aeabi":
            while sub < end:
                tag = attrs[sub]
                (sub_len,) = struct.unpack_from("<I", attrs, sub + 1)
                if tag == 1:  # Tag_File: attributes of the whole file
                    p, stop = sub + 5, sub + sub_len
                    while p < stop:
                        attr, p = _uleb(attrs, p)
                        if attr in (4, 5, 67) or (attr > 32 and attr % 2 == 1):  # NTBS values
                            p = attrs.index(b"\0", p) + 1
                        elif attr == 32:  # Tag_compatibility: ULEB then NTBS
                            _, p = _uleb(attrs, p)
                            p = attrs.index(b"\0", p) + 1
                        else:
                            value, p = _uleb(attrs, p)
                            if attr == 6:
                                return ARM_CPU_ARCH.get(value, f"arch-{value}")
                sub += max(sub_len, 1)
        pos = end if length else len(attrs)
    return ""


def _versions(data: bytes, section: _Section, strtab: _Section, fmt: str, *, needed: bool) -> list[str]:
    """Names from .gnu.version_r (needed) or .gnu.version_d (defined)."""
    names: list[str] = []
    pos = section.offset
    for _ in range(4096):  # bounded walk of the linked list
        if needed:
            _, cnt, _file, aux, nxt = struct.unpack_from(fmt + "HHIII", data, pos)
            a = pos + aux
            for _ in range(cnt):
                _hash, _flags, _other, name, anext = struct.unpack_from(fmt + "IHHII", data, a)
                names.append(_cstr(data, strtab.offset + name))
                if not anext:
                    break
                a += anext
        else:
            _, _flags, _ndx, cnt, _hash, aux, nxt = struct.unpack_from(fmt + "HHHHIII", data, pos)
            if cnt:
                (name,) = struct.unpack_from(fmt + "I", data, pos + aux)
                names.append(_cstr(data, strtab.offset + name))
        if not nxt:
            break
        pos += nxt
    return names


@dataclass(frozen=True)
class _Segment:
    type: int
    offset: int
    vaddr: int
    filesz: int


def _program_headers(data: bytes, fmt: str, elf_class: int, phoff: int, phentsize: int,
                     phnum: int) -> list[_Segment]:
    if not phnum:
        return []
    ph_fmt = fmt + ("IIQQQQQQ" if elf_class == 64 else "IIIIIIII")
    if phentsize < struct.calcsize(ph_fmt) or phoff + phnum * phentsize > len(data):
        raise ElfError(f"truncated or damaged program headers ({phnum} of {phentsize} bytes at {phoff}, "
                       f"file has {len(data)} bytes)")
    segments = []
    for i in range(phnum):
        fields = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
        if elf_class == 64:
            typ, _flags, offset, vaddr, _paddr, filesz = fields[:6]
        else:
            typ, offset, vaddr, _paddr, filesz = fields[:5]
        segments.append(_Segment(typ, offset, vaddr, filesz))
    return segments


def _within(data: bytes, offset: int, size: int, what: str) -> None:
    if offset < 0 or size < 0 or offset + size > len(data):
        raise ElfError(f"damaged ELF file: {what} ({size} bytes at {offset}) lies outside the file "
                       f"({len(data)} bytes)")


def _path_str(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _interpreter(data: bytes, segments: list[_Segment]) -> str:
    for seg in segments:
        if seg.type == PT_INTERP:
            _within(data, seg.offset, seg.filesz, "PT_INTERP")
            raw = data[seg.offset:seg.offset + seg.filesz].split(b"\0", 1)[0]
            if not raw:
                raise ElfError("damaged ELF file: empty PT_INTERP")
            return _path_str(raw)
    return ""


def _file_offset(segments: list[_Segment], vaddr: int) -> int | None:
    """The file offset of a virtual address, through the PT_LOAD segment that maps it."""
    for seg in segments:
        if seg.type == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
            return seg.offset + (vaddr - seg.vaddr)
    return None


def _dynamic(data: bytes, fmt: str, elf_class: int, segments: list[_Segment],
             sections: list[_Section]) -> dict:
    """DT_NEEDED, DT_RUNPATH, DT_RPATH and DT_SONAME from PT_DYNAMIC (what the loader reads) or, with no
    such segment, the .dynamic section; the strings from DT_STRTAB (mapped through PT_LOAD) or, failing
    that, the section the .dynamic section links to."""
    dyn_section = next((sec for sec in sections if sec.type == SHT_DYNAMIC), None)
    dyn_segment = next((seg for seg in segments if seg.type == PT_DYNAMIC), None)
    if dyn_segment is not None:
        where, size = dyn_segment.offset, dyn_segment.filesz
    elif dyn_section is not None:
        where, size = dyn_section.offset, dyn_section.size
    else:
        return {}
    _within(data, where, size, "the dynamic section")
    entry_fmt = fmt + ("qQ" if elf_class == 64 else "iI")
    entry_size = struct.calcsize(entry_fmt)
    entries: list[tuple[int, int]] = []
    for i in range(min(size // entry_size, MAX_DYNAMIC_ENTRIES)):
        tag, value = struct.unpack_from(entry_fmt, data, where + i * entry_size)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    strtab_addr = next((v for t, v in entries if t == DT_STRTAB), None)
    strsz = next((v for t, v in entries if t == DT_STRSZ), None)
    strtab = _file_offset(segments, strtab_addr) if strtab_addr is not None else None
    if strtab is None and dyn_section is not None and 0 < dyn_section.link < len(sections):
        linked = sections[dyn_section.link]
        strtab, strsz = linked.offset, linked.size
    wanted = (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH)
    if strtab is None:
        if any(t in wanted for t, _ in entries):
            raise ElfError("damaged ELF file: dynamic entries name strings but there is no string table")
        return {"dynamic": True}
    end = len(data) if strsz is None else min(len(data), strtab + strsz)
    _within(data, strtab, 0, "the dynamic string table")

    def string(offset: int) -> str:
        start = strtab + offset
        if start >= end:
            raise ElfError(f"damaged ELF file: dynamic string at {offset} is outside its string table")
        stop = data.find(b"\0", start, end)
        return _path_str(data[start:stop if stop >= 0 else end])

    def paths(tag: int) -> tuple[str, ...]:
        return tuple(d for t, v in entries if t == tag for d in string(v).split(":") if d)

    return {"dynamic": True, "needed": tuple(string(v) for t, v in entries if t == DT_NEEDED),
            "soname": next((string(v) for t, v in entries if t == DT_SONAME), ""),
            "runpath": paths(DT_RUNPATH), "rpath": paths(DT_RPATH)}


def parse_ld_so_cache(data: bytes, endian: str = "little") -> list[tuple[str, str]]:
    """(library name, path) pairs of glibc's ``/etc/ld.so.cache`` (format ``glibc-ld.so.cache1.1``, also
    when it follows an old-format part), in the cache's order; [] when it is not such a cache or damaged
    (the loader then falls back to its default directories, and so does the libraries check)."""
    start = data.find(LD_SO_CACHE_MAGIC)
    if start < 0 or len(data) < start + 48:
        return []
    flags = data[start + 28]
    fmt = {2: "<", 3: ">"}.get(flags, "<" if endian == "little" else ">")
    (nlibs,) = struct.unpack_from(fmt + "I", data, start + 20)
    pairs: list[tuple[str, str]] = []
    try:
        for i in range(min(nlibs, (len(data) - start - 48) // 24)):
            _flags, key, value = struct.unpack_from(fmt + "iII", data, start + 48 + i * 24)
            if start + key >= len(data) or start + value >= len(data):
                continue
            pairs.append((_cstr_path(data, start + key), _cstr_path(data, start + value)))
    except (struct.error, ValueError, OverflowError):
        return pairs
    return pairs


def _cstr_path(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return _path_str(data[offset:end if end >= 0 else len(data)])


def parse_elf(data: bytes) -> ElfInfo:
    """The facts of an ELF file crossdock checks; ``ElfError`` for anything that is not a whole ELF file."""
    try:
        return _parse_elf(data)
    except (struct.error, IndexError, ValueError, OverflowError) as e:  # offsets past the end of a damaged file
        raise ElfError(f"truncated or damaged ELF file: {e}") from None


def _parse_elf(data: bytes) -> ElfInfo:
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    elf_class = {1: 32, 2: 64}.get(data[4])
    endian = {1: "little", 2: "big"}.get(data[5])
    if not elf_class or not endian:
        raise ElfError("unknown ELF class or byte order")
    if len(data) < (64 if elf_class == 64 else 52):
        raise ElfError(f"truncated ELF header ({len(data)} bytes; a {elf_class}-bit header has "
                       f"{64 if elf_class == 64 else 52})")
    fmt = "<" if endian == "little" else ">"
    (machine,) = struct.unpack_from(fmt + "H", data, 18)
    if elf_class == 64:
        shoff, flags = struct.unpack_from(fmt + "Q", data, 40)[0], struct.unpack_from(fmt + "I", data, 48)[0]
        shentsize, shnum, shstrndx = struct.unpack_from(fmt + "HHH", data, 58)
        sh_fmt = fmt + "IIQQQQIIQQ"
        (phoff,) = struct.unpack_from(fmt + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(fmt + "HH", data, 54)
    else:
        shoff, flags = struct.unpack_from(fmt + "I", data, 32)[0], struct.unpack_from(fmt + "I", data, 36)[0]
        shentsize, shnum, shstrndx = struct.unpack_from(fmt + "HHH", data, 46)
        sh_fmt = fmt + "IIIIIIIIII"
        (phoff,) = struct.unpack_from(fmt + "I", data, 28)
        phentsize, phnum = struct.unpack_from(fmt + "HH", data, 42)
    segments = _program_headers(data, fmt, elf_class, phoff, phentsize, phnum)
    raw = []
    try:
        for i in range(shnum):
            name, typ, _flags, _addr, offset, size, link, _info, _align, _entsize = struct.unpack_from(
                sh_fmt, data, shoff + i * shentsize)
            raw.append((name, typ, offset, size, link))
    except struct.error as e:
        raise ElfError(f"truncated section headers: {e}") from e
    names_at = raw[shstrndx][2] if 0 <= shstrndx < len(raw) else 0
    sections = [_Section(_cstr(data, names_at + n) if names_at else "", t, o, s, lk) for n, t, o, s, lk in raw]
    needed: list[str] = []
    defined: list[str] = []
    arm_arch = ""
    for s in sections:
        if s.type in (SHT_GNU_VERNEED, SHT_GNU_VERDEF) and s.link < len(sections):
            names = _versions(data, s, sections[s.link], fmt, needed=s.type == SHT_GNU_VERNEED)
            (needed if s.type == SHT_GNU_VERNEED else defined).extend(n for n in names if n.startswith("GLIBC_"))
        elif s.name == ".ARM.attributes":
            arm_arch = _arm_cpu_arch(data[s.offset:s.offset + s.size])
    float_abi = ""
    if machine == 40:
        float_abi = "hard" if flags & EF_ARM_ABI_FLOAT_HARD else "soft" if flags & EF_ARM_ABI_FLOAT_SOFT else ""
    dyn = _dynamic(data, fmt, elf_class, segments, sections)
    return ElfInfo(machine=machine, elf_class=elf_class, endian=endian, flags=flags, arm_float_abi=float_abi,
                   arm_arch=arm_arch, glibc_needed=tuple(sorted(set(needed), key=lambda v: (glibc_key(v), v))),
                   glibc_defined=tuple(sorted(set(defined), key=lambda v: (glibc_key(v), v))),
                   interpreter=_interpreter(data, segments), **dyn)
