from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tasks.core.elf import (
    EF_ARM_ABI_FLOAT_HARD,
    EF_ARM_ABI_FLOAT_SOFT,
    ElfError,
    glibc_key,
    highest,
    parse_elf,
    parse_ld_so_cache,
)
from tests.elf_fixtures import EM_AARCH64, EM_ARM, EM_PPC, EM_S390, make_elf, make_ld_so_cache


def elf_header(*, machine: int, elf_class: int = 32, endian: str = "little", flags: int = 0) -> bytes:
    """A minimal ELF header with no sections: enough for machine, class, byte order and flags."""
    fmt = "<" if endian == "little" else ">"
    ident = b"\x7fELF" + bytes([1 if elf_class == 32 else 2, 1 if endian == "little" else 2, 1]) + b"\0" * 9
    if elf_class == 32:
        rest = struct.pack(fmt + "HHIIIIIHHHHHH", 2, machine, 1, 0, 0, 0, flags, 52, 0, 0, 40, 0, 0)
    else:
        rest = struct.pack(fmt + "HHIQQQIHHHHHH", 2, machine, 1, 0, 0, 0, flags, 64, 0, 0, 64, 0, 0)
    return ident + rest


def test_host_binary_and_libc():
    ls = parse_elf(Path("/bin/ls").read_bytes())
    assert (ls.machine, ls.elf_class, ls.endian) == (62, 64, "little")
    assert ls.glibc_needed and all(v.startswith("GLIBC_2.") for v in ls.glibc_needed)
    libc = parse_elf(Path("/lib/x86_64-linux-gnu/libc.so.6").read_bytes())
    assert highest(libc.glibc_defined) == "GLIBC_2.36"  # bookworm
    assert glibc_key(highest(ls.glibc_needed)) <= glibc_key(highest(libc.glibc_defined))


@pytest.mark.parametrize("flags, abi", [(EF_ARM_ABI_FLOAT_HARD | 0x05000000, "hard"),
                                        (EF_ARM_ABI_FLOAT_SOFT | 0x05000000, "soft"), (0x05000000, "")])
def test_arm_float_abi_from_flags(flags, abi):
    info = parse_elf(elf_header(machine=40, flags=flags))
    assert (info.machine, info.elf_class, info.arm_float_abi) == (40, 32, abi)


def test_big_endian_64_bit():
    info = parse_elf(elf_header(machine=22, elf_class=64, endian="big"))
    assert (info.machine, info.elf_class, info.endian) == (22, 64, "big")


@pytest.mark.parametrize("data", [b"", b"#!/bin/sh\necho hi\n" * 4, b"\x7fELF" + b"\x09" * 60])
def test_not_elf(data):
    with pytest.raises(ElfError):
        parse_elf(data)


def test_glibc_ordering_is_numeric():
    assert highest(["GLIBC_2.9", "GLIBC_2.17", "GLIBC_2.2.5"]) == "GLIBC_2.17"
    assert highest([]) == ""
    # trixie's libc also defines ABI markers, whose digits are no release number
    assert highest(["GLIBC_2.41", "GLIBC_ABI_DT_X86_64_PLT", "GLIBC_ABI_DT_RELR", "GLIBC_PRIVATE"]) == "GLIBC_2.41"
    assert glibc_key("GLIBC_ABI_DT_X86_64_PLT") == () and glibc_key("GLIBC_2.2.5") == (2, 2, 5)


@pytest.mark.parametrize("size", [52, 58, 63, 64, 200])
def test_truncated_files_raise_elf_error_not_struct_error(size):
    data = Path("/bin/ls").read_bytes()[:size]  # a 64-bit ELF cut short
    with pytest.raises(ElfError, match="truncated"):
        parse_elf(data)


# --- what the dynamic loader reads: PT_INTERP, DT_NEEDED, DT_RUNPATH/DT_RPATH, DT_SONAME ------------------

def test_host_binary_and_libraries_dynamic_facts():
    ls = parse_elf(Path("/bin/ls").read_bytes())
    assert ls.interpreter == "/lib64/ld-linux-x86-64.so.2" and ls.dynamic
    assert "libc.so.6" in ls.needed and ls.soname == ""
    libc = parse_elf(Path("/lib/x86_64-linux-gnu/libc.so.6").read_bytes())
    assert libc.soname == "libc.so.6" and libc.needed == ("ld-linux-x86-64.so.2",)
    assert libc.interpreter == "/lib64/ld-linux-x86-64.so.2"  # glibc's libc is also runnable
    loader = parse_elf(Path("/lib64/ld-linux-x86-64.so.2").read_bytes())
    assert (loader.interpreter, loader.needed, loader.soname) == ("", (), "ld-linux-x86-64.so.2")
    # the existing facts still come out of the same files
    assert ls.glibc_needed and highest(libc.glibc_defined) == "GLIBC_2.36"


@pytest.mark.parametrize("elf_class, endian, machine", [(64, "little", EM_AARCH64), (32, "little", EM_ARM),
                                                         (64, "big", EM_S390), (32, "big", EM_PPC)])
@pytest.mark.parametrize("layout", ["segments and sections", "stripped: segments only", "sections only"])
def test_dynamic_facts_for_every_class_and_byte_order(elf_class, endian, machine, layout):
    data = make_elf(machine=machine, elf_class=elf_class, endian=endian, interp="/lib/ld-linux.so.3",
                    needed=("libssl.so.3", "libc.so.6"), soname="libapp.so.1", runpath="$ORIGIN/../lib:/opt/x/lib",
                    rpath="/opt/old", segments=layout != "sections only", sections=layout != "stripped: segments only")
    info = parse_elf(data)
    assert (info.machine, info.elf_class, info.endian) == (machine, elf_class, endian)
    assert info.needed == ("libssl.so.3", "libc.so.6")
    assert (info.soname, info.runpath, info.rpath) == ("libapp.so.1", ("$ORIGIN/../lib", "/opt/x/lib"), ("/opt/old",))
    # PT_INTERP is a program header: a file without them has no interpreter
    assert info.interpreter == ("" if layout == "sections only" else "/lib/ld-linux.so.3")


def test_static_binary_has_no_interpreter_and_no_needed():
    info = parse_elf(make_elf(dynamic=False))
    assert (info.interpreter, info.needed, info.runpath, info.rpath, info.dynamic) == ("", (), (), (), False)
    static_pie = parse_elf(make_elf())  # a dynamic section, but nothing needed and no interpreter
    assert (static_pie.interpreter, static_pie.needed, static_pie.dynamic) == ("", (), True)
    assert parse_elf(elf_header(machine=EM_AARCH64, elf_class=64)).needed == ()  # no headers at all


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_damaged_dynamic_parts_raise_elf_error():
    good = make_elf(interp="/lib/ld-linux-aarch64.so.1", needed=("libc.so.6",), sections=False)
    with pytest.raises(ElfError, match="program headers"):
        parse_elf(_patch(good, 32, "<Q", len(good) - 8))  # e_phoff near the end
    with pytest.raises(ElfError):
        parse_elf(_patch(good, 32, "<Q", 2**63))  # huge offsets are not OverflowError
    with pytest.raises(ElfError):
        parse_elf(_patch(make_elf(), 40, "<Q", 2**64 - 1))  # e_shoff
    ph = 64 + 56  # the second program header (PT_INTERP): its p_offset
    with pytest.raises(ElfError, match="PT_INTERP"):
        parse_elf(_patch(good, ph + 8, "<Q", len(good) + 100))
    dyn_ph = 64 + 2 * 56  # PT_DYNAMIC's p_filesz past the end of the file
    with pytest.raises(ElfError, match="dynamic section"):
        parse_elf(_patch(good, dyn_ph + 32, "<Q", 1 << 20))
    info = parse_elf(good)
    (dyn_offset,) = struct.unpack_from("<Q", good, dyn_ph + 8)
    with pytest.raises(ElfError, match="outside its string table"):
        parse_elf(_patch(good, dyn_offset + 8, "<Q", 10_000))  # DT_NEEDED's string offset
    assert info.needed == ("libc.so.6",)


def test_random_damage_raises_only_elf_error():
    """Every byte of a small dynamic ELF set to several values, and random damage to /bin/ls's headers and
    dynamic section: the reader returns facts or raises ElfError, never struct.error or anything else."""
    import random

    small = make_elf(machine=EM_ARM, elf_class=32, interp="/lib/ld-linux-armhf.so.3", needed=("libc.so.6",),
                     soname="libx.so.1", runpath="$ORIGIN")
    cases = [small[:i] + bytes([v]) + small[i + 1:] for i in range(len(small)) for v in (0, 1, 0x7F, 0xFF)]
    cases += [small[:size] for size in range(len(small))]
    rng = random.Random(16)
    ls = Path("/bin/ls").read_bytes()
    for _ in range(300):
        data = bytearray(ls)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(0, 0x400)] = rng.randrange(256)  # ELF and program headers, PT_INTERP
        cases.append(bytes(data))
    for data in cases:
        try:
            parse_elf(data)
        except ElfError:
            pass


def test_ld_so_cache():
    host = dict(reversed(parse_ld_so_cache(Path("/etc/ld.so.cache").read_bytes())))
    assert host["libc.so.6"] in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")
    pairs = [("libfoo.so.1", "/usr/local/lib/libfoo.so.1"), ("libc.so.6", "/lib/s390x-linux-gnu/libc.so.6")]
    assert parse_ld_so_cache(make_ld_so_cache(pairs, endian="big"), "big") == pairs
    assert parse_ld_so_cache(make_ld_so_cache(pairs), "big") == pairs  # the header's own byte order wins
    assert parse_ld_so_cache(b"ld.so-1.7.0\0\0\0\0\0" + make_ld_so_cache(pairs)) == pairs  # after an old part
    assert parse_ld_so_cache(b"") == [] and parse_ld_so_cache(b"not a cache" * 10) == []
    assert parse_ld_so_cache(make_ld_so_cache(pairs)[:60]) == []  # entries cut off: nothing half-read
