"""The real tier of `inv setup` and the checks that `inv build` runs first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LOCAL_WORLD, PASSWORD, WRONG, make_project, run_inv, unique_image
from tests.test_build_real import binfmt_disabled

pytestmark = pytest.mark.real


def setup(*args: str, env: dict[str, str] | None = None):
    return run_inv("-f", str(LOCAL_WORLD), "setup", *args, env=env)


def test_everything_is_ready_for_the_three_platforms(engine):
    r = setup("--platforms=amd64,arm64,arm")
    assert r.returncode == 0, r.stdout + r.stderr
    for row in ("Docker engine", "buildx plugin", "emulator linux/arm64", "emulator linux/arm/v7",
                "toolchain linux/arm64", "runtime image 127.0.0.1:5000/crossdock/debian:trixie",
                "registry 127.0.0.1:5000"):
        line = next(line for line in r.stdout.splitlines() if row in line)
        assert line.startswith("✓"), line
    assert "qemu-aarch64 version" in r.stdout
    # the capabilities of this engine, read from it (this machine runs dockerd 20.10 with the docker driver)
    info = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                          text=True).stdout.strip()
    assert f"engine {info}, BuildKit " in r.stdout
    rows = {name: next(line for line in r.stdout.splitlines() if f"  {name}  " in line)
            for name in ("push by digest", "cache export (--cache-to)", "attestations (provenance)",
                         "timestamp rewriting")}
    if info.startswith("20.10"):
        assert all(line.startswith("-") for line in rows.values()), rows
        assert "BuildKit 0.11+" in rows["attestations (provenance)"]


def test_disabled_emulator_fails_setup_warns_build_and_fix_repairs_it(engine, tmp_path):
    with binfmt_disabled("qemu-arm"):
        r = setup("--platforms=arm")
        assert r.returncode == 1
        line = next(line for line in r.stdout.splitlines() if "emulator linux/arm/v7" in line)
        assert line.startswith("✗") and "echo 1 > /proc/sys/fs/binfmt_misc/qemu-arm" in line
        assert "emulator linux/arm/v7: the QEMU handler qemu-arm is disabled" in r.stderr
        # Builds need no emulator: it still builds, and warns about the smoke tests.
        project = make_project(tmp_path / "p")
        b = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=arm", f"--project={project}",
                    f"--image={unique_image('warn')}", f"--out-dir={tmp_path / 'out'}")
        assert b.returncode == 0, b.stdout[-2000:] + b.stderr
        assert "warning: linux/arm/v7: the QEMU handler qemu-arm is disabled" in b.stdout
        assert "`inv smoke` will" in b.stdout
        # --fix re-enables it; a second --fix has nothing left to do.
        fixed = setup("--platforms=arm", "--fix")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "--fix: enabled /proc/sys/fs/binfmt_misc/qemu-arm" in fixed.stdout
        assert Path("/proc/sys/fs/binfmt_misc/qemu-arm").read_text().startswith("enabled")
        again = setup("--platforms=arm", "--fix")
        assert again.returncode == 0 and "nothing to fix" in again.stdout and "--fix: enabled" not in again.stdout
    assert setup("--platforms=arm").returncode == 0


def test_no_engine_is_reported_without_a_traceback():
    r = setup("--platforms=amd64", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert "Docker engine: cannot reach it: Cannot connect to the Docker daemon" in r.stderr


def test_platform_missing_from_the_runtime_image_is_named_before_any_build(engine, tmp_path):
    # The bookworm world has amd64, arm64 and armhf: 386 is a Debian port it lacks.
    bookworm = str(LOCAL_WORLD.with_name("local-world-bookworm.yaml"))
    r = run_inv("-f", bookworm, "setup", "--platforms=386")
    assert r.returncode == 1 and "has no linux/386" in r.stderr, r.stdout + r.stderr
    assert 'CROSSDOCK_BASE_RELEASES=bookworm CROSSDOCK_BASE_ARCHES="amd64 arm64 armhf i386"' in r.stderr
    b = run_inv("-f", bookworm, "build", "--platforms=amd64,386", f"--out-dir={tmp_path}")
    assert b.returncode == 1
    assert "runtime image 127.0.0.1:5000/crossdock/debian:bookworm has no linux/386" in b.stderr
    assert "build started" not in b.stdout


def test_platforms_the_builder_cannot_compile_are_named_by_setup_and_refused_by_build(engine, tmp_path):
    bookworm = str(LOCAL_WORLD.with_name("local-world-bookworm.yaml"))
    r = run_inv("-f", bookworm, "setup", "--platforms=amd64,arm/v6,riscv64")
    assert r.returncode == 1
    rows = {name: next(line for line in r.stdout.splitlines() if f"toolchain {name}" in line)
            for name in ("linux/amd64", "linux/arm/v6", "linux/riscv64")}
    assert rows["linux/amd64"].startswith("✓") and "x86_64-unknown-linux-gnu" in rows["linux/amd64"]
    assert rows["linux/arm/v6"].startswith("✗") and "no ARMv6 hard-float port" in rows["linux/arm/v6"]
    assert rows["linux/riscv64"].startswith("✗") and "bookworm ships no Rust standard library" in r.stdout
    b = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm/v6", f"--out-dir={tmp_path}")
    assert b.returncode == 1 and "linux/arm/v6: Debian has no ARMv6 hard-float port" in b.stderr
    assert "rustup builder image" in b.stderr and "build started" not in b.stdout


def test_wrong_password_is_refused_and_never_shown(auth_registry, tmp_path):
    env = {"REGISTRY_USER": "crossdock", "REGISTRY_PASSWORD": WRONG, "HOME": str(tmp_path)}
    r = setup("--platforms=amd64", f"--registry={auth_registry}", env=env)
    assert r.returncode == 1
    line = next(line for line in r.stdout.splitlines() if "login 127.0.0.1:5001" in line)
    assert line.startswith("✗") and "unauthorized" in line.lower()
    assert WRONG not in r.stdout + r.stderr


def test_right_password_logs_in(auth_registry, tmp_path):
    env = {"REGISTRY_USER": "crossdock", "REGISTRY_PASSWORD": PASSWORD, "HOME": str(tmp_path)}
    r = setup("--platforms=amd64", f"--registry={auth_registry}", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(line for line in r.stdout.splitlines() if "login 127.0.0.1:5001 as crossdock" in line)
    assert line.startswith("✓") and "credentials accepted" in line
    assert PASSWORD not in r.stdout + r.stderr
    assert not os.path.exists(tmp_path / ".docker" / "config.json")  # a check stores nothing
