"""The real tier of `inv smoke`: the good example passes on every platform; deliberately broken images
(built here, with no RUN, from the good one) fail with the platform and the check named."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import LOCAL_WORLD, REGISTRY, make_project, run_inv, unique_image

pytestmark = pytest.mark.real


def docker(*args: str) -> str:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def arch_digest(built, name: str) -> str:
    return next(p["digest"] for p in built.report["platforms"] if p["name"] == name)


def derived_list(tmp: Path, *, dockerfile: str, platform: str, files: dict[str, bytes] | None = None) -> str:
    """Build one platform from `dockerfile` (no RUN: nothing emulated), push it, wrap it in a manifest list."""
    image = unique_image("broken")
    ctx = tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (ctx / name).write_bytes(data)
        (ctx / name).chmod(0o755)
    meta = tmp / "meta.json"
    docker("buildx", "build", "--provenance=false", "--platform", platform, "--tag", f"{REGISTRY}/{image}:one",
           "--push", "--metadata-file", str(meta), str(ctx))
    digest = json.loads(meta.read_text())["containerimage.digest"]
    docker("buildx", "imagetools", "create", "--tag", f"{REGISTRY}/{image}:list", f"{REGISTRY}/{image}@{digest}")
    return f"{REGISTRY}/{image}:list"


def smoke(*args: str, out: Path):
    return run_inv("smoke", f"--out-dir={out}", *args)


def test_good_example_passes_every_platform_with_junit(built_example, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "build-report.json").write_text(json.dumps(built_example.report))  # "what the last build made"
    r = smoke(out=out)
    assert r.returncode == 0, r.stdout + r.stderr
    for platform in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
        assert f"{platform}: ok" in r.stdout
    root = ET.parse(out / "smoke-junit.xml").getroot()
    assert root.get("tests") == "3" and root.get("failures") == "0"
    report = json.loads((out / "smoke-report.json").read_text())
    checks = {p["platform"]: {c["name"] for c in p["checks"] if c["ok"]} for p in report["platforms"]}
    for names in checks.values():
        assert {"platform", "non-root user", "ELF machine", "glibc", "run", "service", "label revision"} <= names
    assert {"ARM float ABI", "ARM architecture"} <= checks["linux/arm/v7"]
    # the libraries check read each image's files natively, before the run and apart from it
    interpreters = {"linux/amd64": "/lib64/ld-linux-x86-64.so.2", "linux/arm64": "/lib/ld-linux-aarch64.so.1",
                    "linux/arm/v7": "/lib/ld-linux-armhf.so.3"}
    for p in report["platforms"]:
        names = [c["name"] for c in p["checks"]]
        assert "libraries" in checks[p["platform"]] and names.index("libraries") < names.index("run")
        detail = next(c["detail"] for c in p["checks"] if c["name"] == "libraries")
        assert detail.startswith(f"interpreter {interpreters[p['platform']]}; 2 libraries found in the image")
        assert "libgcc_s.so.1 (" in detail and "libc.so.6 (" in detail
    assert "[ok] libraries: interpreter" in (out / "smoke-junit.xml").read_text()


def test_platform_subset_and_missing_platform(built_example, tmp_path):
    r = smoke(f"--image={built_example.ref}", "--platforms=arm64", out=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "linux/arm64: ok" in r.stdout and "linux/amd64" not in r.stdout.split("smoke-testing")[1].split("\n")[0]
    r = smoke(f"--image={built_example.ref}", "--platforms=riscv64", out=tmp_path)
    assert r.returncode == 1 and "has no linux/riscv64" in r.stderr


def test_x86_binary_in_the_arm64_entry(built_example, tmp_path):
    repo = f"{REGISTRY}/{built_example.image}"
    ref = derived_list(tmp_path, platform="linux/arm64", dockerfile=(
        f"FROM {repo}@{arch_digest(built_example, 'amd64')} AS x86\n"
        f"FROM {repo}@{arch_digest(built_example, 'arm64')}\n"
        "COPY --from=x86 /usr/local/bin/hello-crossdock /usr/local/bin/hello-crossdock\n"))
    r = smoke(f"--image={ref}", out=tmp_path / "out")
    assert r.returncode == 1
    assert "linux/arm64: ELF machine: binary is machine 62 (amd64)" in r.stderr


def test_arm_v7_binary_that_fails_its_version_command(built_example, tmp_path):
    project = make_project(tmp_path / "failing")
    main = project / "src" / "main.rs"
    main.write_text(main.read_text().replace(
        "fn main() -> ExitCode {\n",
        "fn main() -> ExitCode {\n    #[cfg(target_arch = \"arm\")]\n    return ExitCode::FAILURE;\n", 1))
    image = unique_image("failing")
    b = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm", f"--project={project}", f"--image={image}",
                "--tag=t", f"--out-dir={tmp_path / 'out'}")
    assert b.returncode == 0, b.stdout[-2000:] + b.stderr
    r = smoke(out=tmp_path / "out")  # defaults to what that build made
    assert r.returncode == 1
    assert "linux/amd64: ok" in r.stdout
    assert "linux/arm/v7: run: `--version` exited 1" in r.stderr
    failures = [c for c in ET.parse(tmp_path / "out" / "smoke-junit.xml").getroot().iter("testcase")
                if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["linux/arm/v7"]


@pytest.mark.parametrize("change, failed_check", [
    ("USER 0", "non-root user: User='0'"),
    ('LABEL org.opencontainers.image.revision=""',
     "label revision: label org.opencontainers.image.revision is missing"),
])
def test_root_user_and_missing_label(built_example, tmp_path, change, failed_check):
    good = f"{REGISTRY}/{built_example.image}@{arch_digest(built_example, 'amd64')}"
    ref = derived_list(tmp_path, platform="linux/amd64", dockerfile=f"FROM {good}\n{change}\n")
    r = smoke(f"--image={ref}", out=tmp_path / "out")
    assert r.returncode == 1
    assert f"linux/amd64: {failed_check}" in r.stderr


def test_binary_needing_a_newer_glibc_than_the_runtime(built_example, tmp_path):
    """The amd64 binary with its GLIBC_2.34 requirement rewritten to GLIBC_2.99, as if built on a newer
    Debian: the ELF check names it before the run fails on it."""
    good = f"{REGISTRY}/{built_example.image}@{arch_digest(built_example, 'amd64')}"
    cid = docker("create", "--platform", "linux/amd64", good).strip()
    try:
        docker("cp", "-L", f"{cid}:/usr/local/bin/app", str(tmp_path / "app"))
    finally:
        docker("rm", "-f", cid)
    data = (tmp_path / "app").read_bytes()
    assert b"GLIBC_2.34" in data
    ref = derived_list(tmp_path, platform="linux/amd64", files={"newer": data.replace(b"GLIBC_2.34", b"GLIBC_2.99")},
                       dockerfile=f"FROM {good}\nCOPY newer /usr/local/bin/hello-crossdock\n")
    r = smoke(f"--image={ref}", out=tmp_path / "out")
    assert r.returncode == 1
    assert "linux/amd64: glibc: binary needs GLIBC_2.99, the runtime image has GLIBC_2.41" in r.stderr  # trixie
    assert "GLIBC_2.99' not found" in r.stderr  # and the run shows why it matters


def test_binary_needing_a_library_the_image_lacks(built_example, tmp_path):
    """The example's arm64 binary on a bare image with the loader and libc but not libgcc_s (only COPY, in a
    few seconds): the libraries check names the library and where it looked, read natively before the run,
    and the run under QEMU then fails on exactly that library."""
    ref = derived_list(tmp_path, platform="linux/arm64", dockerfile=(
        f"FROM {REGISTRY}/crossdock/debian:trixie AS base\n"
        f"FROM {REGISTRY}/{built_example.image}@{arch_digest(built_example, 'arm64')} AS example\n"
        "FROM scratch\n"
        "COPY --from=base /usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 /lib/ld-linux-aarch64.so.1\n"
        "COPY --from=base /usr/lib/aarch64-linux-gnu/libc.so.6 /usr/lib/aarch64-linux-gnu/libc.so.6\n"
        "COPY --from=example /usr/local/bin/hello-crossdock /usr/local/bin/app\n"
        'ENTRYPOINT ["/usr/local/bin/app"]\n'))
    out = tmp_path / "out"
    r = smoke(f"--image={ref}", out=out)
    assert r.returncode == 1
    assert ("linux/arm64: libraries: libgcc_s.so.1 not found (searched /lib/aarch64-linux-gnu, "
            "/usr/lib/aarch64-linux-gnu, /lib, /usr/lib, /lib64, /usr/lib64)") in r.stderr
    assert "libgcc_s.so.1: cannot open shared object file" in r.stderr  # and the run shows why it matters
    (platform,) = json.loads((out / "smoke-report.json").read_text())["platforms"]
    result = {c["name"]: c["ok"] for c in platform["checks"]}
    assert result["ELF machine"] and result["glibc"] and not result["libraries"] and not result["run"]
    names = [c["name"] for c in platform["checks"]]
    assert names.index("libraries") < names.index("run")


@pytest.mark.parametrize("name", ["amd64", "arm64", "arm/v7"])
def test_file_checks_agree_through_the_engine_api_and_docker_export(built_example, tmp_path, name):
    """The binary and libraries checks read the same files one path at a time over the engine's API (the local
    engine: the default) and from `docker export` (what a remote engine gets), with the same results."""
    import sys

    from invoke import Context

    from tasks.core.platforms import lookup
    from tasks.engine.docker import Engine

    smoke_module = sys.modules["tasks.steps.smoke"]
    p = lookup(name)
    box = Engine(Context()).containers
    assert box.api_socket()
    ref = f"{REGISTRY}/{built_example.image}@{arch_digest(built_example, p.name)}"
    cid = docker("create", "--platform", p.docker, ref).strip()
    try:
        through_api = smoke_module.file_checks(box, cid, tmp_path / "api.tar", p=p, entrypoint="/usr/local/bin/app",
                                               env={}, timeout=60)
        assert not (tmp_path / "api.tar").exists()
        box.api.socket = lambda: ""  # as for an engine that is not on this machine
        exported = smoke_module.file_checks(box, cid, tmp_path / "fs.tar", p=p, entrypoint="/usr/local/bin/app",
                                            env={}, timeout=60)
    finally:
        docker("rm", "-f", cid)
    assert through_api == exported
    assert all(c.ok for c in through_api) and through_api[-1].name == "libraries"


def test_image_that_does_not_exist(engine, tmp_path):
    r = smoke(f"--image={REGISTRY}/test/does-not-exist:nope", out=tmp_path)
    assert r.returncode == 1
    assert "cannot read image 127.0.0.1:5000/test/does-not-exist:nope" in r.stderr and "Traceback" not in r.stderr


def test_missing_emulator_stops_before_running_anything(built_example, tmp_path):
    from tests.test_build_real import binfmt_disabled

    with binfmt_disabled("qemu-arm"):
        r = smoke(f"--image={built_example.ref}", out=tmp_path / "out")
    assert r.returncode == 1
    assert "linux/arm/v7: the QEMU handler qemu-arm is disabled" in r.stderr
    assert "echo 1 > /proc/sys/fs/binfmt_misc/qemu-arm" in r.stderr
    assert "smoke-testing" not in r.stdout and not (tmp_path / "out" / "smoke-junit.xml").exists()
