from __future__ import annotations

import pytest

from tasks.core.platforms import PLATFORMS, PlatformError, by_target, lookup, parse_platforms


@pytest.mark.parametrize("name, docker", [
    ("amd64", "linux/amd64"), ("x86_64", "linux/amd64"),
    ("arm64", "linux/arm64"), ("aarch64", "linux/arm64"),
    ("arm", "linux/arm/v7"), ("armv7", "linux/arm/v7"), ("arm/v7", "linux/arm/v7"), ("armhf", "linux/arm/v7"),
    ("arm/v6", "linux/arm/v6"), ("armv6hf", "linux/arm/v6"),
    ("arm/v5", "linux/arm/v5"), ("armel", "linux/arm/v5"), ("armv5te", "linux/arm/v5"),
    ("386", "linux/386"), ("i386", "linux/386"),
    ("ppc64le", "linux/ppc64le"), ("s390x", "linux/s390x"), ("riscv64", "linux/riscv64"),
    ("ARM64", "linux/arm64"), (" arm ", "linux/arm/v7"),
])
def test_names_and_aliases_resolve(name, docker):
    assert lookup(name).docker == docker


@pytest.mark.parametrize("name, triple, uname, rust_arch", [
    ("amd64", "x86_64-unknown-linux-gnu", "x86_64", "x86_64"),
    ("arm64", "aarch64-unknown-linux-gnu", "aarch64", "aarch64"),
    ("arm/v7", "armv7-unknown-linux-gnueabihf", "armv7l", "arm"),
    ("arm/v5", "armv5te-unknown-linux-gnueabi", "armv7l", "arm"),
    ("arm/v6", "arm-unknown-linux-gnueabihf", "armv7l", "arm"),
    ("ppc64le", "powerpc64le-unknown-linux-gnu", "ppc64le", "powerpc64"),
    ("s390x", "s390x-unknown-linux-gnu", "s390x", "s390x"),
    ("386", "i686-unknown-linux-gnu", "i686", "x86"),
    ("riscv64", "riscv64gc-unknown-linux-gnu", "riscv64", "riscv64"),
])
def test_triples(name, triple, uname, rust_arch):
    p = lookup(name)
    assert p.rust_triple == triple
    assert (p.uname_m, p.rust_arch) == (uname, rust_arch)


def test_arm_variants_are_keyed_on_targetvariant():
    assert by_target("arm", "v7").name == "arm/v7"
    assert by_target("arm", "v6").name == "arm/v6"
    assert by_target("arm", "v5").name == "arm/v5"
    assert by_target("arm", "").name == "arm/v7"  # Docker's default arm variant
    assert by_target("arm64", "v8").name == "arm64"
    with pytest.raises(PlatformError):
        by_target("arm", "v4")
    with pytest.raises(PlatformError):
        by_target("mips", "")


def test_cross_packages_follow_gnu_type():
    p = lookup("arm")
    assert (p.cross_gcc_package, p.linker, p.libc_dev_cross_package) == (
        "gcc-arm-linux-gnueabihf", "arm-linux-gnueabihf-gcc", "libc6-dev-armhf-cross")
    assert lookup("amd64").cross_gcc_package == "gcc-x86-64-linux-gnu"


def test_every_row_is_complete_and_suffixes_are_unique():
    suffixes = [p.suffix for p in PLATFORMS]
    assert len(set(suffixes)) == len(suffixes)
    for p in PLATFORMS:
        assert p.elf_class in (32, 64) and p.elf_machine > 0 and p.qemu_handler.startswith("qemu-")
        assert p.suffix.isalnum()


def test_parse_collapses_duplicates_and_aliases_in_order():
    assert [p.name for p in parse_platforms("arm64,arm,arm/v7,aarch64,armv7")] == ["arm64", "arm/v7"]
    assert [p.name for p in parse_platforms(["amd64", "arm64,386"])] == ["amd64", "arm64", "386"]


@pytest.mark.parametrize("spec", ["", " , ", ","])
def test_empty_list_is_refused_with_supported_names(spec):
    with pytest.raises(PlatformError, match="no platform requested") as e:
        parse_platforms(spec)
    assert "arm64" in str(e.value) and "riscv64" in str(e.value)


def test_unknown_names_are_all_reported_with_supported_names():
    with pytest.raises(PlatformError) as e:
        parse_platforms("amd64,arm65,sparc")
    message = str(e.value)
    assert "'arm65'" in message and "'sparc'" in message and "arm/v7" in message


def test_toolchain_problems_name_the_platform_the_release_and_what_to_use():
    from tasks.core.platforms import toolchain_problem
    v6, v5, riscv = lookup("arm/v6"), lookup("arm/v5"), lookup("riscv64")
    assert "no ARMv6 hard-float port" in toolchain_problem(v6, "debian", "trixie")
    assert toolchain_problem(v6, "rustup", "trixie") == ""
    for p in (v5, riscv):
        problem = toolchain_problem(p, "debian", "bookworm")
        assert f"bookworm ships no Rust standard library for {p.debian_arch}" in problem and "trixie" in problem
        assert toolchain_problem(p, "debian", "trixie") == "" == toolchain_problem(p, "rustup", "bookworm")
    assert all(toolchain_problem(p, "debian", "trixie") == "" for p in PLATFORMS if not p.debian_refusal)
