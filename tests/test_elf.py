from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tasks.core.elf import EF_ARM_ABI_FLOAT_HARD, EF_ARM_ABI_FLOAT_SOFT, ElfError, glibc_key, highest, parse_elf


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


@pytest.mark.parametrize("size", [52, 58, 63, 64, 200])
def test_truncated_files_raise_elf_error_not_struct_error(size):
    data = Path("/bin/ls").read_bytes()[:size]  # a 64-bit ELF cut short
    with pytest.raises(ElfError, match="truncated"):
        parse_elf(data)
