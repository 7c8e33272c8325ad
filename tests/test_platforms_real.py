"""Every Debian architecture for real: the example built for all of them in one `inv build` on the trixie
world and smoke-tested under QEMU, and amd64, arm64 and arm/v7 on the bookworm world.

The trixie world has every Debian 13 port the machine's Debian mirror serves (scripts/provision-local.sh
leaves out, and records, an architecture whose packages the mirror does not serve). What it lacks is
built nowhere: for those the test proves the refusal before any build, naming the platform, and that
`inv setup` names the file listing what the mirror did not serve.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tasks.core.platforms import PLATFORMS, Platform, lookup
from tests.conftest import LOCAL_WORLD, images_of, make_project, manifest, run_inv, unique_image

pytestmark = pytest.mark.real

BOOKWORM_WORLD = LOCAL_WORLD.with_name("local-world-bookworm.yaml")
DEBIAN_PORTS = tuple(p for p in PLATFORMS if not p.debian_refusal)  # arm/v6 is no Debian port
# What this project's machines' mirror serves for trixie (2026-12-02): the world must never offer less.
SERVED_HERE = ("amd64", "arm64", "arm/v7", "386", "riscv64")
STATE = Path(os.environ.get("CROSSDOCK_STATE") or "/var/lib/crossdock")


def world_platforms(release: str) -> tuple[Platform, ...]:
    _, index = manifest("crossdock/debian", release)
    names = {"/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                    m["platform"].get("variant", "")))) for m in images_of(index)}
    return tuple(p for p in DEBIAN_PORTS if p.docker in names)


def build_and_smoke(world: Path, platforms: tuple[Platform, ...], out: Path) -> tuple[dict, dict]:
    project = make_project(out.parent / "hello")
    image = unique_image(f"ports-{len(platforms)}")
    names = ",".join(p.name for p in platforms)
    b = run_inv("-f", str(world), "build", f"--platforms={names}", f"--project={project}", f"--image={image}",
                "--tag=ports", f"--out-dir={out}")
    assert b.returncode == 0, b.stdout[-4000:] + b.stderr
    s = run_inv("-f", str(world), "smoke", f"--out-dir={out}")
    assert s.returncode == 0, s.stdout[-4000:] + s.stderr
    return (json.loads((out / "build-report.json").read_text()),
            json.loads((out / "smoke-report.json").read_text()))


def assert_every_platform_ran(platforms: tuple[Platform, ...], report: dict, smoke: dict) -> None:
    assert [p["platform"] for p in report["platforms"]] == [p.docker for p in platforms]
    assert {p["platform"]: p["rust_target"] for p in report["platforms"]} == {
        p.docker: p.rust_triple for p in platforms}
    by_platform = {p["platform"]: p for p in smoke["platforms"]}
    assert sorted(by_platform) == sorted(p.docker for p in platforms)
    for p in platforms:
        result = by_platform[p.docker]
        assert result["ok"], result
        checks = {c["name"]: c for c in result["checks"]}
        # The binary ran under QEMU and said which architecture it was compiled for.
        assert f"({p.rust_arch}-linux)" in checks["run"]["detail"], checks["run"]
        assert checks["ELF machine"]["ok"]
        if p.elf_abi:
            assert checks["ELF ABI"]["ok"] and p.elf_abi in checks["ELF ABI"]["detail"]
        if p.arm_float_abi:
            assert checks["ARM float ABI"]["ok"] and checks["ARM architecture"]["ok"]


def test_every_debian_port_of_the_trixie_world_in_one_build(engine, tmp_path):
    offered = world_platforms("trixie")
    assert {p.name for p in offered} >= set(SERVED_HERE), f"the trixie world lost platforms: {offered}"
    report, smoke = build_and_smoke(LOCAL_WORLD, offered, tmp_path / "out")
    assert_every_platform_ran(offered, report, smoke)
    print(f"built and smoke-tested {len(offered)} platforms: {', '.join(p.name for p in offered)}")

    # A Debian port the world lacks is refused before anything is built, and setup says why.
    for p in (p for p in DEBIAN_PORTS if p not in offered):
        b = run_inv("-f", str(LOCAL_WORLD), "build", f"--platforms=amd64,{p.name}", f"--out-dir={tmp_path / p.suffix}")
        assert b.returncode == 1 and f"has no {p.docker}" in b.stderr and "build started" not in b.stdout, b.stderr
        r = run_inv("-f", str(LOCAL_WORLD), "setup", f"--platforms={p.name}")
        assert r.returncode == 1 and f"has no {p.docker}" in r.stderr
        marker = STATE / "rootfs" / "trixie" / p.debian_arch / "unavailable"
        if marker.exists():
            assert str(marker) in r.stderr and "did not serve" in r.stderr, r.stderr


def test_three_platforms_on_the_bookworm_world(engine, tmp_path):
    platforms = tuple(lookup(n) for n in ("amd64", "arm64", "arm/v7"))
    report, smoke = build_and_smoke(BOOKWORM_WORLD, platforms, tmp_path / "out")
    assert_every_platform_ran(platforms, report, smoke)
    assert report["settings"]["BUILDER_IMAGE"].startswith("127.0.0.1:5000/crossdock/debian:bookworm@sha256:")
