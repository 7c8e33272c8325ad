"""docker/platform.sh must agree with the Python platform table, row by row, for both builder flavours.

Runs the script with plain `sh` and stubbed TARGETARCH / TARGETVARIANT / BUILDARCH: no Docker.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tasks.core.platforms import PLATFORMS, Platform

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "platform.sh"


def platform_env(*, arch: str, variant: str = "", build_arch: str = "amd64", flavour: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "TARGETARCH": arch, "TARGETVARIANT": variant, "BUILDARCH": build_arch,
           "RUST_FLAVOUR": flavour}
    out = subprocess.run(["sh", str(SCRIPT), "env"], env=env, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def expected(p: Platform, *, flavour: str, build_debian_arch: str = "amd64") -> dict[str, str]:
    triple = p.rust_triple
    native = p.debian_arch == build_debian_arch
    packages = "gcc libc6-dev" if native else f"{p.cross_gcc_package} {p.libc_dev_cross_package}"
    if flavour == "debian":
        packages += f" libstd-rust-web-dev:{p.debian_arch}"
    want = {
        "RUST_FLAVOUR": flavour,
        "RUST_TARGET": triple,
        "DEBIAN_ARCH": p.debian_arch,
        "BUILD_DEBIAN_ARCH": build_debian_arch,
        "GNU_TYPE": p.gnu_type,
        "NATIVE": "1" if native else "0",
        "PACKAGES": packages,
        f"CARGO_TARGET_{triple.upper().replace('-', '_')}_LINKER": p.linker,
        f"CC_{triple.replace('-', '_')}": p.linker,
        f"AR_{triple.replace('-', '_')}": f"{p.gnu_type}-ar",
        f"CXX_{triple.replace('-', '_')}": f"{p.gnu_type}-g++",
        f"PKG_CONFIG_PATH_{triple.replace('-', '_')}": f"/usr/lib/{p.multiarch}/pkgconfig:/usr/share/pkgconfig",
        f"PKG_CONFIG_LIBDIR_{triple.replace('-', '_')}": f"/usr/lib/{p.multiarch}/pkgconfig:/usr/share/pkgconfig",
        f"BINDGEN_EXTRA_CLANG_ARGS_{triple.replace('-', '_')}":
            f"--sysroot=/usr/{p.gnu_type} -I/usr/include/{p.multiarch} -I/usr/include",
        "PKG_CONFIG_ALLOW_CROSS": "1",
    }
    if flavour == "rustup":
        want["RUSTUP_TARGET"] = triple
    return want


# Every row in both flavours, but arm/v6 with the Debian one (refused: test_debian_flavour_refuses_arm_v6...).
@pytest.mark.parametrize("platform, flavour", [(p, f) for p in PLATFORMS for f in ("rustup", "debian")
                                               if not (f == "debian" and p.debian_refusal)],
                         ids=lambda v: v.name if isinstance(v, Platform) else v)
def test_script_agrees_with_table(platform, flavour):
    got = platform_env(arch=platform.arch, variant=platform.variant, flavour=flavour)
    want = expected(platform, flavour=flavour)
    assert got == want  # every line the script prints, nothing more


@pytest.mark.parametrize("flavour", ["rustup", "debian"])
def test_amd64_from_an_arm64_build_machine_is_a_cross_build(flavour):
    amd64 = next(p for p in PLATFORMS if p.name == "amd64")
    got = platform_env(arch="amd64", build_arch="arm64", flavour=flavour)
    want = expected(amd64, flavour=flavour, build_debian_arch="arm64")
    assert {k: got.get(k) for k in want} == want
    assert got["PACKAGES"].startswith("gcc-x86-64-linux-gnu libc6-dev-amd64-cross")


@pytest.mark.parametrize("arch, variant, triple", [
    ("arm", "", "armv7-unknown-linux-gnueabihf"),  # Docker's default arm variant is v7
    ("arm64", "v8", "aarch64-unknown-linux-gnu"),
])
def test_default_variants(arch, variant, triple):
    assert platform_env(arch=arch, variant=variant, flavour="rustup")["RUST_TARGET"] == triple


def test_debian_flavour_refuses_arm_v6_naming_what_to_use():
    r = subprocess.run(["sh", str(SCRIPT), "env"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "TARGETARCH": "arm", "TARGETVARIANT": "v6",
                            "BUILDARCH": "amd64", "RUST_FLAVOUR": "debian"})
    assert r.returncode == 1 and r.stdout == ""
    assert "no ARMv6 hard-float port" in r.stderr and "rustup" in r.stderr and "arm/v5" in r.stderr


@pytest.mark.parametrize("arch, variant", [("mips64le", ""), ("arm", "v4"), ("", ""), ("amd64", "v3")])
def test_unknown_target_exits_1_naming_supported_platforms(arch, variant):
    r = subprocess.run(["sh", str(SCRIPT), "env"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "TARGETARCH": arch, "TARGETVARIANT": variant,
                            "BUILDARCH": "amd64", "RUST_FLAVOUR": "debian"})
    assert r.returncode == 1
    assert "unsupported target platform" in r.stderr and "arm/v7" in r.stderr and r.stdout == ""


def test_flavour_is_detected_from_rustup_on_path(tmp_path):
    fake_rustup = tmp_path / "rustup"
    fake_rustup.write_text("#!/bin/sh\nexit 0\n")
    fake_rustup.chmod(0o755)
    env = {"TARGETARCH": "arm64", "TARGETVARIANT": "", "BUILDARCH": "amd64"}
    with_rustup = subprocess.run(["sh", str(SCRIPT), "env"], capture_output=True, text=True, check=True,
                                 env={**env, "PATH": f"{tmp_path}:/usr/bin:/bin"}).stdout
    without = subprocess.run(["sh", str(SCRIPT), "env"], capture_output=True, text=True, check=True,
                             env={**env, "PATH": "/usr/bin:/bin"}).stdout
    assert "RUST_FLAVOUR=rustup" in with_rustup and "RUST_FLAVOUR=debian" in without


def test_unknown_command_is_a_usage_error():
    r = subprocess.run(["sh", str(SCRIPT), "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_provision_script_maps_debian_arches_like_the_table():
    """scripts/provision-local.sh has its own Debian arch -> Docker platform map (it runs before the venv
    exists); every entry must agree with tasks/core/platforms.py."""
    import re

    script = (SCRIPT.parent.parent / "scripts" / "provision-local.sh").read_text()
    body = script[script.index("docker_platform() {"):]
    body = body[:body.index("\n}\n")]
    pairs = dict(re.findall(r"(\w+)\) echo (linux/[\w/]+) ;;", body))
    assert pairs, "no mappings found"
    # Debian's ports only: arm/v6 (Raspberry Pi OS) shares armhf's userland ABI but is no Debian port.
    by_debian = {p.debian_arch: p.docker for p in PLATFORMS if not p.debian_refusal}
    assert {arch: by_debian.get(arch) for arch in pairs} == pairs
    assert set(pairs) == set(by_debian)  # every Debian port has a base image platform


def test_the_environment_env_prints_is_the_one_cargo_gets(tmp_path):
    """`platform.sh env` and the compile steps share one function: every line it prints is in cargo's
    environment during `platform.sh build` (a stand-in cargo records it), static flags included."""
    from tests.conftest import platform_sh, stand_in_world

    world = stand_in_world(tmp_path, "#!/bin/sh\nenv >\"$HOME/cargo-env\"\nexit 1\n", {"Cargo.toml": ""})
    for linkage in ("dynamic", "static"):
        platform_sh(world, "build", LINKAGE=linkage, COMPILE_TOKENS="0", COMPILE_SLOTS="0")
        seen = set((tmp_path / "cargo-env").read_text().splitlines())
        printed = subprocess.run(["sh", str(SCRIPT), "env"], capture_output=True, text=True, check=True,
                                 env={"PATH": "/usr/bin:/bin", "TARGETARCH": "amd64", "BUILDARCH": "amd64",
                                      "RUST_FLAVOUR": "debian", "LINKAGE": linkage}).stdout.splitlines()
        assert printed and set(printed) <= seen, set(printed) - seen
        assert ("PKG_CONFIG_ALL_STATIC=1" in seen) == (linkage == "static")


def test_tree_places_the_spec_layout_with_modes_and_owners(tmp_path):
    """`platform.sh tree` (run natively, as root, as in the image-tree stage) from a layout tasks/core/image.py
    writes: owners before modes (a setuid mode survives), a link, a binary, a data directory; an asset whose
    destination is a directory of the runtime stops it by name."""
    import os
    import stat

    tree, spec, bins = tmp_path / "tree", tmp_path / "spec", tmp_path / "bins"
    (tree / "etc").mkdir(parents=True)
    (spec / "files" / "usr" / "local" / "bin").mkdir(parents=True)
    (spec / "files" / "etc").mkdir()
    (spec / "files" / "usr" / "local" / "bin" / "helper").write_text("#!/bin/sh\n")
    (spec / "files" / "etc" / "app.toml").write_text("x = 1\n")
    bins.mkdir()
    (bins / "app").write_text("\x7fELF")
    (spec / "layout").write_text("user 2000 3000\nworkdir /srv/app\ndir 0750 /data\nbin app /usr/local/bin/app\n"
                                 "link /usr/local/bin/main app\nfile 4755 user /usr/local/bin/helper\n"
                                 "file 0640 root /etc/app.toml\n")
    env = {"PATH": "/usr/bin:/bin", "TREE": str(tree), "SPEC_DIR": str(spec), "BINS_DIR": str(bins),
           "SOURCE_DATE_EPOCH": "1700000000"}
    r = subprocess.run(["sh", str(SCRIPT), "tree"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def facts(rel: str) -> tuple[int, int, int]:
        st = os.lstat(tree / rel)
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid

    assert facts("usr/local/bin/helper") == (0o4755, 2000, 3000)
    assert facts("etc/app.toml") == (0o640, 0, 0) and facts("data") == (0o750, 2000, 3000)
    assert facts("usr/local/bin/app")[0] == 0o755 and (tree / "srv" / "app").is_dir()
    assert os.readlink(tree / "usr" / "local" / "bin" / "main") == "app"
    assert os.lstat(tree / "etc" / "app.toml").st_mtime == 1700000000
    (spec / "layout").write_text("user 2000 3000\nfile 0644 root /etc\n")
    r = subprocess.run(["sh", str(SCRIPT), "tree"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "asset destination /etc is a directory of the runtime" in r.stderr


JOINT_CARGO = r"""#!/bin/sh
# A stand-in cargo for a joint compile: its unit graph unifies feature "a" of crate feat across the targets
# when one of them is $FEATURE_FOR (as cargo does for a [target.'cfg(...)'.dependencies] feature); its build
# writes the binary of each target and cargo's compiler-artifact messages (one proc-macro for the machine).
echo "$*" >>"$HOME/cargo-calls"
targets="" graph=0 prev=""
for a in "$@"; do
  [ "$prev" = --target ] && targets="$targets $a"
  [ "$a" = --unit-graph ] && graph=1
  prev=$a
done
features='[]'
for t in $targets; do [ "$t" = "${FEATURE_FOR:-none}" ] && features='["a"]'; done
lib='"target":{"kind":["lib"],"crate_types":["lib"],"name":"feat","src_path":"/src/feat/src/lib.rs"}'
macro='"target":{"kind":["proc-macro"],"crate_types":["proc-macro"],"name":"serde_derive"}'
profile='"profile":{"name":"release","strip":{"deferred":"None"}}'
if [ "$graph" = 1 ]; then
  printf '{"version":1,"units":['
  for t in $targets; do
    printf '{"pkg_id":"path+file:///src/feat#0.1.0",%s,%s,"platform":"%s","mode":"build","features":%s,' \
      "$lib" "$profile" "$t" "$features"
    printf '"dependencies":[]},'
  done
  printf '{"pkg_id":"registry+x#serde_derive@1.0.0",%s,%s,"platform":null,"mode":"build",' "$macro" "$profile"
  printf '"features":[],"dependencies":[]}],"roots":[0]}\n'
  exit 0
fi
artifact() {  # ID TARGET FILE
  printf '{"reason":"compiler-artifact","package_id":"%s",%s,"profile":{},"features":[],' "$1" "$2"
  printf '"filenames":["%s"],"executable":null,"fresh":false}\n' "$3"
}
artifact "registry+x#serde_derive@1.0.0" "$macro" "$CARGO_TARGET_DIR/release/deps/libserde_derive.so"
for t in $targets; do
  [ "$t" != "${FAIL_FOR:-none}" ] || continue
  mkdir -p "$CARGO_TARGET_DIR/$t/release"
  printf 'ELF %s' "$t" >"$CARGO_TARGET_DIR/$t/release/app"
  printf '{"reason":"compiler-artifact","package_id":"path+file:///src#0.1.0","target":{"kind":["bin"],'
  printf '"name":"app"},"filenames":["%s"],"executable":"%s","fresh":false}\n' "$CARGO_TARGET_DIR/$t/release/app" \
    "$CARGO_TARGET_DIR/$t/release/app"
done
[ -z "${FAIL_FOR:-}" ] || { echo "error: could not compile app for $FAIL_FOR" >&2; exit 101; }
"""


def test_a_joint_compile_runs_one_cargo_for_every_target_and_counts_what_it_compiled(tmp_path):
    from tests.conftest import platform_sh, stand_in_world

    world = stand_in_world(tmp_path, JOINT_CARGO, {"Cargo.toml": ""})
    r = platform_sh(world, "build", TARGETS="amd64 arm64 arm/v7", COMPILE_TOKENS="0", COMPILE_SLOTS="0")
    assert r.returncode == 0, r.stderr
    builds = [c for c in (tmp_path / "cargo-calls").read_text().splitlines() if "--unit-graph" not in c]
    assert builds == ["build --profile release --target x86_64-unknown-linux-gnu --target aarch64-unknown-linux-gnu "
                      "--target armv7-unknown-linux-gnueabihf --bin app --keep-going "
                      "--message-format=json-render-diagnostics"]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["amd64", "arm64", "armv7"]
    assert (out / "armv7" / "app").read_text() == "ELF armv7-unknown-linux-gnueabihf"
    assert r.stderr.count("compiled proc-macro serde_derive (build machine)") == 1
    assert ("compiled 1 unit(s) for the build machine (build scripts, proc-macros and their dependencies) and 3 for "
            "3 target(s)") in r.stderr


def test_a_joint_compile_declines_when_a_target_s_features_would_differ(tmp_path):
    from tests.conftest import platform_sh, stand_in_world

    world = stand_in_world(tmp_path, JOINT_CARGO, {"Cargo.toml": ""})
    r = platform_sh(world, "build", TARGETS="amd64 arm64", FEATURE_FOR="aarch64-unknown-linux-gnu",
                    COMPILE_TOKENS="0", COMPILE_SLOTS="0")
    assert r.returncode == 0, r.stderr
    why = (tmp_path / "out" / "per-platform").read_text()
    assert why.startswith("the resolved features differ by target: x86_64-unknown-linux-gnu alone gets units")
    assert "feat" in why and '["a"]' not in why.split(";")[0]
    assert [c for c in (tmp_path / "cargo-calls").read_text().splitlines() if "--unit-graph" not in c] == []
    assert not (tmp_path / "out" / "amd64").exists()
    cook = platform_sh(world, "cook", TARGETS="amd64 arm64", FEATURE_FOR="aarch64-unknown-linux-gnu",
                       COMPILE_TOKENS="0", COMPILE_SLOTS="0", CARGO_TARGET_DIR=str(tmp_path / "cook"))
    assert cook.returncode == 0 and "cook: not compiling the targets together" in cook.stderr


def test_a_joint_compile_says_which_platforms_cargo_failed_for(tmp_path):
    """cargo goes on with the other targets (--keep-going); platform.sh names each platform's outcome and
    fails the step, so crossdock reports that one and builds the others on their own."""
    from tests.conftest import platform_sh, stand_in_world

    world = stand_in_world(tmp_path, JOINT_CARGO, {"Cargo.toml": ""})
    r = platform_sh(world, "build", TARGETS="amd64 arm/v7", FAIL_FOR="armv7-unknown-linux-gnueabihf",
                    COMPILE_TOKENS="0", COMPILE_SLOTS="0")
    assert r.returncode == 101
    assert "platform.sh: joint compile: amd64 compiled" in r.stderr
    assert "platform.sh: joint compile: arm/v7 FAILED (armv7-unknown-linux-gnueabihf: cargo exited 101)" in r.stderr
