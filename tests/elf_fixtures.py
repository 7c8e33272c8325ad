"""Small, real ELF files built in memory for the ELF reader and the libraries check: an ELF header, program
headers (PT_LOAD over the whole file, PT_INTERP, PT_DYNAMIC), the dynamic string table and dynamic entries
(DT_NEEDED, DT_SONAME, DT_RUNPATH, DT_RPATH, DT_STRTAB, DT_STRSZ), and optionally section headers (.dynstr,
.dynamic linked to it, .shstrtab), for any class and byte order. Also a glibc ld.so.cache."""

from __future__ import annotations

import struct

from tasks.core.elf import (
    DT_NEEDED,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRSZ,
    DT_STRTAB,
    PT_DYNAMIC,
    PT_INTERP,
    PT_LOAD,
    SHT_DYNAMIC,
)

EM_X86_64, EM_AARCH64, EM_ARM, EM_S390, EM_PPC = 62, 183, 40, 22, 20
BASE = 0x10000


def make_elf(*, machine: int = EM_AARCH64, elf_class: int = 64, endian: str = "little", flags: int = 0,
             interp: str = "", needed: tuple[str, ...] = (), soname: str = "", runpath: str = "", rpath: str = "",
             dynamic: bool = True, segments: bool = True, sections: bool = True) -> bytes:
    """An ELF file with what the loader reads. ``dynamic=False``: no dynamic section at all (static);
    ``segments=False``: no program headers (the reader must use the sections); ``sections=False``: none
    (a stripped file: the reader must use the segments)."""
    fmt = "<" if endian == "little" else ">"
    is64 = elf_class == 64
    ehsize, phentsize, shentsize = (64, 56, 64) if is64 else (52, 32, 40)
    dyn_fmt = fmt + ("qQ" if is64 else "iI")

    strings = bytearray(b"\0")

    def add(s: str) -> int:
        strings.extend(s.encode() + b"\0")
        return len(strings) - len(s.encode()) - 1

    entries = [(DT_NEEDED, add(n)) for n in needed]
    if soname:
        entries.append((DT_SONAME, add(soname)))
    if runpath:
        entries.append((DT_RUNPATH, add(runpath)))
    if rpath:
        entries.append((DT_RPATH, add(rpath)))

    phnum = (1 + bool(interp) + bool(dynamic)) if segments else 0
    pos = ehsize + phnum * phentsize
    interp_off = pos
    interp_bytes = interp.encode() + b"\0" if interp else b""
    pos += len(interp_bytes)
    strtab_off = pos
    pos += len(strings)
    pos += (-pos) % 8
    dyn_off = pos
    entries += [(DT_STRTAB, BASE + strtab_off), (DT_STRSZ, len(strings)), (0, 0)]
    dyn_bytes = b"".join(struct.pack(dyn_fmt, t, v) for t, v in entries) if dynamic else b""
    pos += len(dyn_bytes)
    shstr = b"\0.dynstr\0.dynamic\0.shstrtab\0"
    shstr_off = pos
    pos += len(shstr)
    pos += (-pos) % 8
    shoff = pos if sections else 0
    shnum = 4 if sections else 0
    total = pos + shnum * shentsize

    ident = b"\x7fELF" + bytes([1 if elf_class == 32 else 2, 1 if endian == "little" else 2, 1]) + b"\0" * 9
    if is64:
        header = struct.pack(fmt + "HHIQQQIHHHHHH", 3, machine, 1, BASE, ehsize if phnum else 0, shoff, flags,
                             ehsize, phentsize, phnum, shentsize, shnum, 3 if sections else 0)
    else:
        header = struct.pack(fmt + "HHIIIIIHHHHHH", 3, machine, 1, BASE, ehsize if phnum else 0, shoff, flags,
                             ehsize, phentsize, phnum, shentsize, shnum, 3 if sections else 0)
    out = bytearray(ident + header)

    def phdr(typ: int, offset: int, size: int) -> bytes:
        if is64:
            return struct.pack(fmt + "IIQQQQQQ", typ, 4, offset, BASE + offset, BASE + offset, size, size, 8)
        return struct.pack(fmt + "IIIIIIII", typ, offset, BASE + offset, BASE + offset, size, size, 4, 4)

    if segments:
        out += phdr(PT_LOAD, 0, total)
        if interp:
            out += phdr(PT_INTERP, interp_off, len(interp_bytes))
        if dynamic:
            out += phdr(PT_DYNAMIC, dyn_off, len(dyn_bytes))
    out += interp_bytes + strings
    out += b"\0" * (dyn_off - len(out))
    out += dyn_bytes + shstr
    out += b"\0" * (shoff - len(out)) if sections else b"\0" * (pos - len(out))

    def shdr(name: int, typ: int, offset: int, size: int, link: int = 0) -> bytes:
        if is64:
            return struct.pack(fmt + "IIQQQQIIQQ", name, typ, 0, 0, offset, size, link, 0, 1, 0)
        return struct.pack(fmt + "IIIIIIIIII", name, typ, 0, 0, offset, size, link, 0, 1, 0)

    if sections:
        out += shdr(0, 0, 0, 0)
        out += shdr(1, 3, strtab_off, len(strings))  # .dynstr
        out += shdr(9, SHT_DYNAMIC if dynamic else 1, dyn_off, len(dyn_bytes), 1)  # .dynamic -> .dynstr
        out += shdr(18, 3, shstr_off, len(shstr))  # .shstrtab
    assert len(out) == total, (len(out), total)
    return bytes(out)


def make_ld_so_cache(pairs: list[tuple[str, str]], *, endian: str = "little", flags: int = 0x0303) -> bytes:
    """glibc's ld.so.cache (format glibc-ld.so.cache1.1): (name, path) entries; strings follow the entries
    and their offsets count from the start of the file."""
    fmt = "<" if endian == "little" else ">"
    header_size, entry_size = 48, 24
    strings = bytearray()
    offsets = []
    base = header_size + entry_size * len(pairs)
    for name, path in pairs:
        key = base + len(strings)
        strings += name.encode() + b"\0"
        value = base + len(strings)
        strings += path.encode() + b"\0"
        offsets.append((key, value))
    header = b"glibc-ld.so.cache1.1" + struct.pack(fmt + "II", len(pairs), len(strings))
    header += bytes([2 if endian == "little" else 3, 0, 0, 0]) + struct.pack(fmt + "IIII", 0, 0, 0, 0)
    entries = b"".join(struct.pack(fmt + "iIIIQ", flags, k, v, 0, 0) for k, v in offsets)
    return header + entries + bytes(strings)
