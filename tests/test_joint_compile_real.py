"""The real tier of the joint compile: several platforms built on one daemon are compiled by one cargo with
every target, so build scripts, proc-macros and what they depend on compile once (issue 25).

Counted from the build's own logs (platform.sh's lines from cargo's compiler-artifact messages), never timed.
The images are the ones each platform's own build makes: a platform built alone with ``--no-join`` (one
platform per CI job) has the joint build's digest; a project whose features differ by target falls back to one
cargo per platform and says so.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tasks.core import buildx
from tests.conftest import LOCAL_WORLD, REGISTRY, run_inv, unique_image
from tests.rust_fixtures import derive_project, target_features_project

pytestmark = pytest.mark.real

PROC_MACRO = re.compile(r"platform\.sh: (?:cook: )?compiled proc-macro (\S+) \(build machine\)")


def logs_of(out: Path) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in sorted((out / "build").glob("*.log"))}


def build(project: Path, image: str, out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    r = run_inv("-f", str(LOCAL_WORLD), "build", f"--project={project}", f"--image={image}", f"--out-dir={out}",
                *args)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    return r, json.loads((out / "build-report.json").read_text())


def digests(report: dict) -> dict[str, str]:
    return {p["name"]: p["digest"] for p in report["platforms"]}


@pytest.fixture(scope="module")
def derive_joint(engine, tmp_path_factory):
    """The serde-derive fixture, cold, for amd64, arm64 and arm/v7 at once: (project, image, out, stdout, report)."""
    root = tmp_path_factory.mktemp("joint")
    project = derive_project(root / "derive", run=uuid.uuid4().hex)
    image, out = unique_image("joint"), root / "out"
    r, report = build(project, image, out, "--platforms=amd64,arm64,arm", "--tag=joint")
    return project, image, out, r.stdout, report


def test_three_platforms_compile_each_proc_macro_once(derive_joint):
    _, _, out, stdout, report = derive_joint
    logs = logs_of(out)
    assert set(logs) == {"joint.log", "amd64.log", "arm64.log", "armv7.log"}
    macros = [m.group(1) for text in logs.values() for m in PROC_MACRO.finditer(text)]
    assert "serde_derive" in macros
    assert sorted(macros) == sorted(set(macros))  # each proc-macro crate compiled once for the three platforms
    joint = logs["joint.log"]
    cargo_lines = [line for line in joint.splitlines() if "platform.sh: " in line and "cargo build " in line]
    assert cargo_lines and all(line.count("--target ") == 3 for line in cargo_lines)
    assert "for a compile token" in joint  # in the daemon's jobserver, as any other compile
    for name in ("amd64.log", "arm64.log", "armv7.log"):  # each platform's build found the compile in the cache
        assert "platform.sh: cargo" not in logs[name] and "platform.sh: cook: cargo" not in logs[name]
    host, target = buildx.compiled_units(joint)
    assert report["compile"] == {"joint": True, "targets": "amd64 arm64 arm/v7", "host_units": host,
                                 "target_units": target}
    assert host > 0 and target > 0
    assert "by one cargo in" in stdout and "warning" not in stdout.lower().replace("warning (dry run)", "")
    assert [p["rust_target"] for p in report["platforms"]] == [
        "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"]


def test_each_platform_of_the_joint_build_runs_its_own_binary(derive_joint):
    _, image, _, _, report = derive_joint
    for p in report["platforms"]:
        ref = f"{REGISTRY}/{image}@{p['digest']}"
        run = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", f"linux/{p['name']}", ref],
                             capture_output=True, text=True, timeout=300)
        arch = {"amd64": "x86_64", "arm64": "aarch64", "arm/v7": "arm"}[p["name"]]
        assert run.returncode == 0 and run.stdout.startswith(f"derive-demo 0.1.0 ({arch}) derived 2 fields"), run


def test_a_platform_built_alone_has_the_joint_build_s_digest(derive_joint, tmp_path):
    """The reproducibility promise across CI layouts: arm/v7 built alone (--no-join, as one job per arch
    builds it: its own cargo, its own target dir, from an empty one) is the same image, bit for bit; its own
    cargo compiled as many units for the build machine as the joint one did for all three platforms."""
    project, image, _, _, joint_report = derive_joint
    out = tmp_path / "out"
    r, alone = build(project, image, out, "--platforms=arm", "--tag=alone", "--no-join")
    assert alone["compile"] == {"joint": False}
    log = logs_of(out)["armv7.log"]
    assert "--target armv7-unknown-linux-gnueabihf" in log and "joint.log" not in logs_of(out)
    assert digests(alone)["arm/v7"] == digests(joint_report)["arm/v7"]
    assert buildx.compiled_units(log)[0] == joint_report["compile"]["host_units"]


def test_features_that_differ_by_target_get_one_cargo_per_platform_and_say_so(engine, tmp_path):
    project = target_features_project(tmp_path / "features")
    image, out = unique_image("joint-features"), tmp_path / "out"
    r, report = build(project, image, out, "--platforms=amd64,arm64", "--package=feat-app", "--bin=feat-app")
    assert "one cargo per platform instead: the resolved features differ by target" in r.stdout
    assert report["compile"]["joint"] is False and "x86_64-unknown-linux-gnu" in report["compile"]["why"]
    logs = logs_of(out)
    assert "platform.sh: not compiling the targets together" in logs["joint.log"]
    for name, triple in (("amd64.log", "x86_64-unknown-linux-gnu"), ("arm64.log", "aarch64-unknown-linux-gnu")):
        assert f"--target {triple} " in logs[name]  # each compiled by its own cargo
    said = {}
    for p in report["platforms"]:
        run = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", f"linux/{p['name']}",
                              f"{REGISTRY}/{image}@{p['digest']}"], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run
        said[p["name"]] = run.stdout.strip()
    # what each platform's own build makes: a joint build would have turned `fast` on for amd64 too
    assert said == {"amd64": "feat-app x86_64 fast off", "arm64": "feat-app aarch64 fast on"}
