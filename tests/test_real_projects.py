"""Real projects in the real tier: a crate linking the system's OpenSSL (build and runtime packages), the
runtime flavours (slim, minimal, static) and smoke defaults that fit a plain CLI.

The OpenSSL fixture takes its crates from Debian's librust-* packages (tests/rust_fixtures.py) and is built
once per session per flavour; its compiles share one cargo target dir, so the second flavour only links.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import LOCAL_WORLD, REGISTRY, make_project, run_inv, unique_image
from tests.rust_fixtures import CROSSDOCK_SHA256, build_tool_project, cli_project, openssl_project

pytestmark = pytest.mark.real

THREE = "amd64,arm64,arm"


@dataclass(frozen=True)
class Image:
    ref: str
    out: Path
    report: dict


def build(project: Path, out: Path, *args: str, platforms: str = THREE, world: Path = LOCAL_WORLD) -> Image:
    image = unique_image(project.name)
    r = run_inv("-f", str(world), "build", f"--platforms={platforms}", f"--project={project}",
                f"--image={image}", "--tag=t1", f"--out-dir={out}", *args)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    return Image(ref=f"{REGISTRY}/{image}:t1", out=out, report=json.loads((out / "build-report.json").read_text()))


def smoke(image: Image, *args: str):
    return run_inv("-f", str(LOCAL_WORLD), "smoke", f"--out-dir={image.out}", *args)


def smoke_report(image: Image) -> dict:
    return json.loads((image.out / "smoke-report.json").read_text())


def run_image(ref: str, platform: str, *args: str) -> str:
    r = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", platform, ref, *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="session")
def openssl_src(engine, tmp_path_factory) -> Path:
    return openssl_project(tmp_path_factory.mktemp("openssl") / "tls-probe")


@pytest.fixture(scope="session")
def openssl_slim(openssl_src, tmp_path_factory) -> Image:
    return build(openssl_src, tmp_path_factory.mktemp("openssl-slim-out"))


@pytest.fixture(scope="session")
def openssl_minimal(openssl_src, tmp_path_factory) -> Image:
    return build(openssl_src, tmp_path_factory.mktemp("openssl-minimal-out"), "--runtime=minimal")


@pytest.mark.parametrize("flavour", ["slim", "minimal"])
def test_openssl_project_runs_on_every_platform(flavour, request):
    image: Image = request.getfixturevalue(f"openssl_{flavour}")
    for platform, arch in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64"), ("linux/arm/v7", "arm")):
        out = run_image(image.ref, platform)
        assert f"tls-probe 0.3.0 ({arch}) OpenSSL 3." in out, out
        assert f"sha256(crossdock)={CROSSDOCK_SHA256}" in out, out
    r = smoke(image)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert all(p["ok"] for p in smoke_report(image)["platforms"])


def test_runtime_packages_are_recorded_for_scanners(openssl_slim, openssl_minimal):
    for image in (openssl_slim, openssl_minimal):
        text = _read_file(image.ref, "linux/arm64", "/var/lib/dpkg/status")
        assert "Package: libssl3t64\nStatus: install ok installed" in text
        assert "Architecture: arm64" in text
    minimal = _read_file(openssl_minimal.ref, "linux/arm64", "/var/lib/dpkg/status")
    assert "Package: libc6\n" in minimal and "Package: bash\n" not in minimal  # only what the binary needs
    bundle = _read_file(openssl_minimal.ref, "linux/arm64", "/etc/ssl/certs/ca-certificates.crt")
    assert bundle.count("BEGIN CERTIFICATE") > 100


def _copied_out(ref: str, platform: str, path: str) -> bytes:
    """``docker cp`` of a path of the image (a tar stream), read natively (the minimal image has no shell)."""
    subprocess.run(["docker", "pull", "-q", "--platform", platform, ref], capture_output=True, check=True)
    cid = subprocess.run(["docker", "create", "--platform", platform, ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        return subprocess.run(["docker", "cp", "-L", f"{cid}:{path}", "-"], capture_output=True, check=True).stdout
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def _read_file(ref: str, platform: str, path: str) -> str:
    """A file of the image, read natively (the minimal image has no shell and no cat)."""
    with tarfile.open(fileobj=io.BytesIO(_copied_out(ref, platform, path))) as tar:
        member = tar.next()
        data = tar.extractfile(member) if member else None
        return data.read().decode(errors="replace") if data else ""


def _mode(ref: str, platform: str, path: str) -> int:
    with tarfile.open(fileobj=io.BytesIO(_copied_out(ref, platform, path))) as tar:
        member = tar.next()
        assert member is not None, path
        return member.mode


def test_minimal_has_what_a_distroless_base_has(openssl_minimal):
    """Time zone data with /etc/localtime at UTC, /etc/nsswitch.conf, a /tmp anyone may write in (sticky),
    and tzdata recorded for scanners."""
    assert _read_file(openssl_minimal.ref, "linux/arm64", "/etc/timezone") == "Etc/UTC\n"
    assert _read_file(openssl_minimal.ref, "linux/arm64", "/etc/localtime").startswith("TZif")  # followed (-L)
    assert _read_file(openssl_minimal.ref, "linux/arm64", "/usr/share/zoneinfo/Europe/Paris").startswith("TZif")
    assert "hosts: files dns" in _read_file(openssl_minimal.ref, "linux/arm64", "/etc/nsswitch.conf")
    assert "Package: tzdata\n" in _read_file(openssl_minimal.ref, "linux/arm64", "/var/lib/dpkg/status")
    assert _mode(openssl_minimal.ref, "linux/arm64", "/tmp") == 0o1777


def test_minimal_is_much_smaller_than_slim(openssl_slim, openssl_minimal):
    sizes = {name: {p["name"]: p["size"] for p in image.report["platforms"]}
             for name, image in (("slim", openssl_slim), ("minimal", openssl_minimal))}
    for platform in ("amd64", "arm64", "arm/v7"):
        assert 0 < sizes["minimal"][platform] < sizes["slim"][platform] / 2, sizes


def test_without_runtime_packages_smoke_names_the_missing_library(engine, tmp_path):
    # On bookworm: trixie's base system has libssl3t64 already (its apt links OpenSSL), bookworm's has none.
    project = openssl_project(tmp_path / "tls-probe", runtime_packages=False)
    bookworm = LOCAL_WORLD.with_name("local-world-bookworm.yaml")
    image = build(project, tmp_path / "out", platforms="arm64", world=bookworm)
    r = smoke(image)
    assert r.returncode == 1
    assert "libssl.so.3" in r.stderr, r.stderr
    checks = {c["name"]: c for c in smoke_report(image)["platforms"][0]["checks"]}
    assert not checks["libraries"]["ok"] and "libssl.so.3" in checks["libraries"]["detail"]


def test_example_as_a_static_binary_passes_smoke_with_no_interpreter(engine, tmp_path):
    project = make_project(tmp_path / "hello")
    image = build(project, tmp_path / "out", "--runtime=static")
    r = smoke(image)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    for p in smoke_report(image)["platforms"]:
        libraries = next(c for c in p["checks"] if c["name"] == "libraries")
        assert libraries["ok"] and "no interpreter" in libraries["detail"], libraries
        glibc = next(c for c in p["checks"] if c["name"] == "glibc")
        assert glibc["ok"]
    assert all(0 < p["size"] < 2 * 2**20 for p in image.report["platforms"]), image.report["platforms"]


def test_a_plain_cli_passes_smoke_with_the_defaults(engine, tmp_path):
    project = cli_project(tmp_path / "rev-cli")
    image = build(project, tmp_path / "out")
    r = smoke(image)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    names = {c["name"] for p in smoke_report(image)["platforms"] for c in p["checks"]}
    assert "service" not in names and "run" in names


def test_build_tools_run_on_the_build_machine(engine, tmp_path):
    project = build_tool_project(tmp_path / "tool-user")
    image = build(project, tmp_path / "out", platforms="arm64")
    out = run_image(image.ref, "linux/arm64")
    assert out.startswith("tool-user 1.0.0 built with jq-1."), out
    assert smoke(image).returncode == 0


def test_a_runtime_package_that_does_not_exist_is_named(engine, tmp_path):
    project = build_tool_project(tmp_path / "tool-user", runtime_packages='"no-such-package-crossdock"')
    image = unique_image("missing")
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=arm64", f"--project={project}", f"--image={image}",
                f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 1
    log = (tmp_path / "out" / "build" / "arm64.log").read_text()
    assert "Debian package 'no-such-package-crossdock' does not exist for arm64" in log
    assert "Debian package 'no-such-package-crossdock' does not exist for arm64" in r.stdout  # the log's tail


@pytest.mark.parametrize("runtime", ["minimal", "static"])
def test_the_flavours_without_a_shell_take_every_image_key(engine, tmp_path, runtime):
    """The example with assets (one owned by its user), a data directory, its own user and ids, a working
    directory, environment, labels and a second port, on the flavours that have no shell (the files are placed
    natively in the image-tree stage): every spec check passes under QEMU."""
    project = make_project(tmp_path / "hello")
    (project / "config").mkdir()
    (project / "config" / "hello.toml").write_text("greeting = 'hi'\n")
    (project / "config" / "state.json").write_text("{}\n")
    manifest = project / "Cargo.toml"
    manifest.write_text(manifest.read_text() + """assets = [["config/hello.toml", "/etc/hello/", "0640"],
          ["config/state.json", "/var/lib/hello/state.json", "0600"]]
owned-by-user = ["/var/lib/hello/state.json"]
dirs = ["/data", ["/data/cache", "0700"]]
user = "hello"
uid = 4242
gid = 4343
workdir = "/data"
env = { HELLO_MODE = "flavour-test" }
labels = { "org.opencontainers.image.title" = "Hello on a flavour without a shell" }
ports = [8080, 9090]
""")
    subprocess.run(["git", "-C", str(project), "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit",
                    "-qam", "spec"], check=True)
    image = build(project, tmp_path / "out", f"--runtime={runtime}", platforms="arm64")
    r = smoke(image)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    (platform,) = smoke_report(image)["platforms"]
    checks = {c["name"]: c for c in platform["checks"]}
    for name in ("asset /etc/hello/hello.toml", "asset /var/lib/hello/state.json", "directory /data",
                 "directory /data/cache", "config user", "config workdir", "env HELLO_MODE",
                 "label org.opencontainers.image.title", "exposed ports", "run", "service"):
        assert checks[name]["ok"], (name, checks.get(name))
    assert "writable (a file was written)" in checks["directory /data/cache"]["detail"]
    assert "owner user" in checks["asset /var/lib/hello/state.json"]["detail"]
