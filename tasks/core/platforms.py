"""The platform table: the single source for every per-architecture fact crossdock uses.

Each row joins what the user types (names and aliases), what Docker and BuildKit call the platform
(os/arch/variant, TARGETARCH + TARGETVARIANT), what Rust and Debian call it (target triple, Debian
architecture, cross gcc package and linker), what QEMU registers for it (binfmt handler), and what a
binary and a running container for it look like (ELF machine/class/endianness, ``uname -m``, Rust's
``std::env::consts::ARCH``). ``docker/platform.sh`` repeats the build-side columns in shell and a test
keeps the two in agreement. Reference for the mapping: tonistiigi/xx.

Pure: no Docker, no subprocess, no environment.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import CrossdockError


class Endian(enum.Enum):
    LITTLE = "little"
    BIG = "big"


# ELF e_machine values (elf.h).
EM_386 = 3
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

ELF_ABI_PPC64_V2 = "ELFv2"  # e_flags & 3 == 2 (1 is ELFv1, the big-endian ppc64 ABI)
ELF_ABI_RISCV_LP64D = "lp64d"  # e_flags & 6 == 4: double-precision float ABI (Debian's riscv64)


def elf_abi_of(machine: int, flags: int) -> str:
    """The ABI an ELF file's e_flags state, for the machines whose Debian port fixes one ('' otherwise)."""
    if machine == EM_PPC64:
        return {0: "unstated", 1: "ELFv1", 2: ELF_ABI_PPC64_V2}.get(flags & 3, f"e_flags {flags:#x}")
    if machine == EM_RISCV:
        return {0: "lp64 (soft float)", 2: "lp64f (single float)", 4: ELF_ABI_RISCV_LP64D,
                6: "lp64q (quad float)"}[flags & 6]
    return ""


@dataclass(frozen=True)
class Platform:
    name: str  # canonical user name, also the key of the table
    aliases: tuple[str, ...]
    arch: str  # TARGETARCH
    variant: str  # TARGETVARIANT ("" when none)
    rust_triple: str  # Rust's glibc target (rustup and Debian's rustc-web name them alike)
    debian_arch: str
    gnu_type: str  # Debian's GNU type: the cross gcc is "<gnu_type>-gcc"
    qemu_handler: str  # /proc/sys/fs/binfmt_misc/<qemu_handler>
    elf_machine: int
    elf_class: int  # 32 or 64
    endian: Endian
    uname_m: str  # what `uname -m` prints in a container of this platform
    rust_arch: str  # std::env::consts::ARCH
    # ARM only: the float ABI the binary must use ("hard" or "soft").
    arm_float_abi: str = ""
    # Debian's multiarch directory (/usr/lib/<multiarch>), when it differs from the GNU type.
    multiarch_dir: str = ""
    # The ELF ABI its Debian port uses, where e_flags say it: ppc64le's ELFv2, riscv64's double-float lp64d.
    elf_abi: str = ""
    # ARM only: the newest architecture (Tag_CPU_arch) the platform's boards run.
    arm_max_arch: str = ""
    # Why Debian's own Rust (the debian builder flavour) cannot build for it ("" when it can).
    debian_refusal: str = ""

    @property
    def multiarch(self) -> str:
        return self.multiarch_dir or self.gnu_type

    @property
    def docker(self) -> str:
        """The Docker platform string, e.g. ``linux/arm/v7``."""
        return "/".join(["linux", self.arch] + ([self.variant] if self.variant else []))

    @property
    def suffix(self) -> str:
        """A tag-safe short name, e.g. ``armv7`` (used for per-arch staging and ``--load`` tags)."""
        return self.arch + self.variant

    @property
    def cross_gcc_package(self) -> str:
        """Debian's cross compiler package (``gcc-aarch64-linux-gnu``)."""
        return "gcc-" + self.gnu_type.replace("_", "-")

    @property
    def linker(self) -> str:
        return self.gnu_type + "-gcc"

    @property
    def libc_dev_cross_package(self) -> str:
        return f"libc6-dev-{self.debian_arch}-cross"


def _row(name: str, aliases: tuple[str, ...], **fields: object) -> Platform:
    return Platform(name=name, aliases=aliases, **fields)  # type: ignore[arg-type]


PLATFORMS: tuple[Platform, ...] = (
    _row("amd64", ("x86_64", "x86-64", "linux/amd64"), arch="amd64", variant="",
         rust_triple="x86_64-unknown-linux-gnu", debian_arch="amd64", gnu_type="x86_64-linux-gnu",
         qemu_handler="qemu-x86_64", elf_machine=EM_X86_64, elf_class=64, endian=Endian.LITTLE,
         uname_m="x86_64", rust_arch="x86_64"),
    _row("arm64", ("aarch64", "arm64/v8", "linux/arm64", "linux/arm64/v8"), arch="arm64", variant="",
         rust_triple="aarch64-unknown-linux-gnu", debian_arch="arm64", gnu_type="aarch64-linux-gnu",
         qemu_handler="qemu-aarch64", elf_machine=EM_AARCH64, elf_class=64, endian=Endian.LITTLE,
         uname_m="aarch64", rust_arch="aarch64"),
    _row("arm/v7", ("arm", "armv7", "armhf", "armv7l", "linux/arm", "linux/arm/v7"), arch="arm",
         variant="v7", rust_triple="armv7-unknown-linux-gnueabihf", debian_arch="armhf",
         gnu_type="arm-linux-gnueabihf", qemu_handler="qemu-arm", elf_machine=EM_ARM, elf_class=32,
         endian=Endian.LITTLE, uname_m="armv7l", rust_arch="arm", arm_float_abi="hard", arm_max_arch="v7"),
    # Debian's armel port (and Debian's rustc-web for it) targets ARMv5TE, soft float; runs on v5 to v7 boards.
    _row("arm/v5", ("armv5", "armv5te", "armel", "armv5tel", "linux/arm/v5"), arch="arm", variant="v5",
         rust_triple="armv5te-unknown-linux-gnueabi", debian_arch="armel", gnu_type="arm-linux-gnueabi",
         qemu_handler="qemu-arm", elf_machine=EM_ARM, elf_class=32, endian=Endian.LITTLE,
         uname_m="armv7l", rust_arch="arm", arm_float_abi="soft", arm_max_arch="v5TEJ"),
    # Raspberry Pi OS's armhf: ARMv6 hard float (the Pi 1 and Zero). No Debian port builds for it (Debian's
    # armhf is ARMv7: its crt objects and libraries would put v7 code into the binary), so only a rustup
    # builder (arm-unknown-linux-gnueabihf) with an ARMv6 C toolchain, for a Raspberry Pi OS runtime.
    _row("arm/v6", ("armv6", "armv6l", "armv6hf", "linux/arm/v6"), arch="arm", variant="v6",
         rust_triple="arm-unknown-linux-gnueabihf", debian_arch="armhf", gnu_type="arm-linux-gnueabihf",
         qemu_handler="qemu-arm", elf_machine=EM_ARM, elf_class=32, endian=Endian.LITTLE,
         uname_m="armv7l", rust_arch="arm", arm_float_abi="hard", arm_max_arch="v6KZ",
         debian_refusal="Debian has no ARMv6 hard-float port (its armhf is ARMv7; a binary linked with "
                        "Debian's armhf C library would not run on an ARMv6 board): build arm/v6 with a rustup "
                        "builder image (target arm-unknown-linux-gnueabihf, with an ARMv6 C cross toolchain) for "
                        "a Raspberry Pi OS runtime image, or build arm/v5 (Debian's armel, soft float), which "
                        "also runs on ARMv6 boards"),
    _row("386", ("i386", "i686", "x86", "linux/386"), arch="386", variant="",
         rust_triple="i686-unknown-linux-gnu", debian_arch="i386", gnu_type="i686-linux-gnu",
         qemu_handler="qemu-i386", elf_machine=EM_386, elf_class=32, endian=Endian.LITTLE,
         uname_m="i686", rust_arch="x86", multiarch_dir="i386-linux-gnu"),
    _row("ppc64le", ("ppc64el", "powerpc64le", "linux/ppc64le"), arch="ppc64le", variant="",
         rust_triple="powerpc64le-unknown-linux-gnu", debian_arch="ppc64el",
         gnu_type="powerpc64le-linux-gnu", qemu_handler="qemu-ppc64le", elf_machine=EM_PPC64,
         elf_class=64, endian=Endian.LITTLE, uname_m="ppc64le", rust_arch="powerpc64", elf_abi=ELF_ABI_PPC64_V2),
    _row("s390x", ("linux/s390x",), arch="s390x", variant="", rust_triple="s390x-unknown-linux-gnu",
         debian_arch="s390x", gnu_type="s390x-linux-gnu", qemu_handler="qemu-s390x",
         elf_machine=EM_S390, elf_class=64, endian=Endian.BIG, uname_m="s390x", rust_arch="s390x"),
    _row("riscv64", ("riscv64gc", "linux/riscv64"), arch="riscv64", variant="",
         rust_triple="riscv64gc-unknown-linux-gnu", debian_arch="riscv64", gnu_type="riscv64-linux-gnu",
         qemu_handler="qemu-riscv64", elf_machine=EM_RISCV, elf_class=64, endian=Endian.LITTLE,
         uname_m="riscv64", rust_arch="riscv64", elf_abi=ELF_ABI_RISCV_LP64D),
)

_BY_NAME: dict[str, Platform] = {}
for _p in PLATFORMS:
    for _key in (_p.name, *_p.aliases):
        assert _key not in _BY_NAME, f"platform name {_key!r} is used twice"
        _BY_NAME[_key] = _p


# Debian architectures whose Rust standard library (libstd-rust-web-dev, matching rustc-web) a Debian
# release lacks: bookworm has none for armel (only the old libstd-rust-dev 1.63) and no riscv64 port at all.
NO_RUST_STD = {"bookworm": frozenset({"armel", "riscv64"})}


def toolchain_problem(p: Platform, flavour: str, release: str) -> str:
    """Why the builder cannot compile for ``p`` (its flavour, and the builder's Debian release when known), or ''."""
    if flavour != "debian":
        return ""
    if p.debian_refusal:
        return p.debian_refusal
    if p.debian_arch in NO_RUST_STD.get(release, ()):
        return (f"Debian {release} ships no Rust standard library for {p.debian_arch} "
                f"(libstd-rust-web-dev:{p.debian_arch}): use a trixie builder and runtime (the default), or a "
                f"rustup builder image")
    return ""


class PlatformError(CrossdockError):
    """A platform list that cannot be built: the message says what is wrong and what is supported."""


def supported_names() -> str:
    """The canonical names on one line, then one line per platform with its aliases."""
    rows = (f"  {p.name:<8} {p.docker:<14} aliases: {', '.join(p.aliases)}" for p in PLATFORMS)
    return f"{', '.join(p.name for p in PLATFORMS)}; names and aliases:\n" + "\n".join(rows)


def lookup(name: str) -> Platform:
    key = name.strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    raise PlatformError(f"unknown platform {name!r}. Supported platforms: {supported_names()}")


def by_target(arch: str, variant: str = "") -> Platform:
    """The row for a TARGETARCH / TARGETVARIANT pair (as BuildKit passes them)."""
    # Docker's defaults: plain "arm" means arm/v7, and arm64's variant v8 is implied.
    variant = {("arm", ""): "v7", ("arm64", "v8"): ""}.get((arch, variant), variant)
    for p in PLATFORMS:
        if (p.arch, p.variant) == (arch, variant):
            return p
    raise PlatformError(f"no platform for TARGETARCH={arch!r} TARGETVARIANT={variant!r}")


def parse_platforms(spec: str | list[str] | tuple[str, ...]) -> tuple[Platform, ...]:
    """Parse a comma-separated platform list into table rows, in order, without duplicates.

    Aliases collapse (``arm,arm/v7`` is one platform). Every name is checked before anything is
    returned, and all unknown names are reported at once.
    """
    items = spec.split(",") if isinstance(spec, str) else [s for part in spec for s in part.split(",")]
    names = [s.strip() for s in items if s.strip()]
    if not names:
        raise PlatformError(f"no platform requested. Supported platforms: {supported_names()}")
    unknown = [n for n in names if n.lower() not in _BY_NAME]
    if unknown:
        listed = ", ".join(repr(n) for n in unknown)
        raise PlatformError(f"unknown platform{'s' if len(unknown) > 1 else ''} {listed}. "
                            f"Supported platforms: {supported_names()}")
    result: list[Platform] = []
    for n in names:
        p = _BY_NAME[n.lower()]
        if p not in result:
            result.append(p)
    return tuple(result)


def missing_platforms(offered: list[str], wanted: tuple[Platform, ...]) -> list[Platform]:
    """Platforms of ``wanted`` an image's index lacks (arm/v7 also matches a variant-less linux/arm)."""
    have = set()
    for name in offered:
        try:
            have.add(lookup(name).name)
        except PlatformError:
            continue
    return [p for p in wanted if p.name not in have]


def base_image_problem(runtime_image: str, offered: list[str], platforms: tuple[Platform, ...]) -> str:
    """For `inv build`: the runtime image lacks a requested platform (checked before any build). ``offered``:
    the platforms its index lists (empty when unreadable or single-platform: the build then reports it)."""
    missing = missing_platforms(offered, platforms) if offered else []
    if not missing:
        return ""
    return (f"the runtime image {runtime_image} has no {', '.join(p.docker for p in missing)} "
            f"(it has {', '.join(offered)}): drop those platforms or choose another --runtime-image")
