"""Read what a shipped binary is, without running it: ELF header, ARM attributes, glibc versions. Pure.

Enough of the ELF format (System V gABI, ARM ELF ABI) to answer: which machine, class and byte order;
for 32-bit ARM, hard or soft float and the architecture version (v6 vs v7); which ``GLIBC_x.y`` versions
the binary needs (``.gnu.version_r``) and which a libc defines (``.gnu.version_d``).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import CrossdockError

EF_ARM_ABI_FLOAT_SOFT = 0x200
EF_ARM_ABI_FLOAT_HARD = 0x400
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE

# Tag_CPU_arch values (ARM ELF ABI addenda): the architecture the code was built for.
ARM_CPU_ARCH = {0: "pre-v4", 1: "v4", 2: "v4T", 3: "v5T", 4: "v5TE", 5: "v5TEJ", 6: "v6", 7: "v6KZ",
                8: "v6T2", 9: "v6K", 10: "v7", 11: "v6-M", 12: "v6S-M", 13: "v7E-M", 14: "v8", 15: "v8-R",
                16: "v8-M.baseline", 17: "v8-M.mainline"}


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


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    offset: int
    size: int
    link: int


def glibc_key(version: str) -> tuple[int, ...]:
    """``GLIBC_2.34`` -> (2, 34), for comparisons."""
    return tuple(int(x) for x in re.findall(r"\d+", version))


def highest(versions: tuple[str, ...] | list[str]) -> str:
    return max(versions, key=glibc_key) if versions else ""


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


def parse_elf(data: bytes) -> ElfInfo:
    """The facts of an ELF file crossdock checks; ``ElfError`` for anything that is not a whole ELF file."""
    try:
        return _parse_elf(data)
    except (struct.error, IndexError, ValueError) as e:  # offsets pointing past the end of a damaged file
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
    else:
        shoff, flags = struct.unpack_from(fmt + "I", data, 32)[0], struct.unpack_from(fmt + "I", data, 36)[0]
        shentsize, shnum, shstrndx = struct.unpack_from(fmt + "HHH", data, 46)
        sh_fmt = fmt + "IIIIIIIIII"
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
    return ElfInfo(machine=machine, elf_class=elf_class, endian=endian, flags=flags, arm_float_abi=float_abi,
                   arm_arch=arm_arch, glibc_needed=tuple(sorted(set(needed), key=glibc_key)),
                   glibc_defined=tuple(sorted(set(defined), key=glibc_key)))
