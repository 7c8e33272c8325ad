"""Shared fixtures. Tests come in tiers:

* pure core (no marker): tables, settings, plans, parsers; no Docker, no network.
* ``real``: a real Docker engine, buildx, QEMU binfmt and the registry on 127.0.0.1:5000, as provisioned
  by scripts/provision-local.sh. Outside CI a missing engine skips them; under CI (``CI`` set) it is a
  failure, and .ci/run also fails the run if any test was skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parent.parent
EXAMPLE = SUITE / "example"
REGISTRY = "127.0.0.1:5000"
LOCAL_WORLD = SUITE / "local-world.yaml"
INV = [sys.executable, "-m", "invoke", "--search-root", str(SUITE)]


PLATFORM_SH = SUITE / "docker" / "platform.sh"


# The unit tier: test modules of the pure core and of the task logic against MockContext or fakes. A test
# there that starts a process (docker, git, sh, ...) is a test of another tier in the wrong file: it fails.
UNIT_MODULES = frozenset({
    "test_bench_fixed_cost", "test_bench_jobserver", "test_bench_joint", "test_build_flow", "test_build_plan",
    "test_buildx", "test_capabilities", "test_checks", "test_elf", "test_emulation", "test_engine", "test_guards",
    "test_image", "test_merge", "test_platforms", "test_readme", "test_recipe", "test_references",
    "test_release_audit", "test_private_sources", "test_sbom", "test_settings", "test_spec_checks", "test_tags"})


@pytest.fixture(autouse=True)
def no_process_in_the_unit_tier(request, monkeypatch):
    if request.module.__name__.rsplit(".", 1)[-1] not in UNIT_MODULES or request.node.get_closest_marker("spawns"):
        return

    def refuse(self, args, *rest, **kwargs):
        raise AssertionError(f"a unit-tier test started a process: {args!r} (move it to a real-tier module, or "
                             f"fake what it calls)")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(os, "system", lambda command: refuse(None, command))
    monkeypatch.setattr(os, "posix_spawn", lambda path, *a, **k: refuse(None, path))


def stand_in_world(root: Path, fake_cargo: str, files: dict[str, str]) -> Path:
    """Where platform.sh runs outside any build: ``bin/cargo`` (a stand-in script), the project's ``files``
    under ``src/`` and an empty shared cache ``cache/``."""
    (root / "bin").mkdir()
    (root / "bin" / "cargo").write_text(fake_cargo)
    (root / "bin" / "cargo").chmod(0o755)
    for rel, text in files.items():
        (root / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / rel).write_text(text)
    (root / "cache").mkdir()
    return root


def platform_sh(world: Path, command: str, *, popen: bool = False, **env: str):
    """``sh platform.sh COMMAND`` in ``world/src`` for an amd64 target on an amd64 machine, Debian's Rust, the
    stand-in cargo first on PATH; ``env`` adds to or overrides that environment. A finished run, or with
    ``popen`` a running one (in a session of its own)."""
    full = {"HOME": str(world), "PATH": f"{world / 'bin'}:/usr/bin:/bin", "TARGETARCH": "amd64", "BUILDARCH": "amd64",
            "RUST_FLAVOUR": "debian", "BIN": "app", "CARGO_SHARED_CACHE": str(world / "cache"),
            "CARGO_TARGET_DIR": str(world / "target"), "OUT_DIR": str(world / "out"), **env}
    argv = ["sh", str(PLATFORM_SH), command]
    if popen:
        return subprocess.Popen(argv, cwd=world / "src", env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    return subprocess.run(argv, cwd=world / "src", env=full, capture_output=True, text=True)


def compile_runs(dockerfile: str) -> list[str]:
    """Every RUN of a Dockerfile's compile steps (platform.sh cook and build, each and joint), continuation
    lines joined."""
    joined = dockerfile.replace("\\\n", " ")
    return [line for line in joined.splitlines()
            if line.startswith("RUN ") and ("platform.sh cook" in line or "platform.sh build" in line)]


def run_inv(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    """Run `inv ARGS` the way a user does (invoke loads tasks.py from the suite)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*INV, *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd or SUITE, timeout=timeout)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_all(repo: Path, message: str, *, tag: str | None = None) -> str:
    """`git init` of the directory, one commit of everything in it (optional tag): the commit's hash."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "-m", message)
    if tag:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD").strip()


def make_project(dest: Path, *, source: Path = EXAMPLE, tag: str | None = None) -> Path:
    """A real git repository holding a copy of the example project (one commit, optional tag)."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target"))
    (dest / ".gitignore").write_text("target/\n")
    commit_all(dest, "example", tag=tag)
    return dest


def release_amd64_arm64(project: Path, *, image: str, out: Path, version: str) -> tuple[Path, dict]:
    """`inv release` of the tagged project for amd64 and arm64 on the local world: its record's path and content."""
    r = run_inv("-f", str(LOCAL_WORLD), "release", "--platforms=amd64,arm64", f"--project={project}",
                f"--image={image}", f"--out-dir={out}")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    path = out / "releases" / f"{version}.json"
    return path, json.loads(path.read_text())


def rebuild_record(record: Path, *, project: Path, out: Path) -> dict:
    """`inv rebuild` of a release record (it must succeed): its report."""
    r = run_inv("-f", str(LOCAL_WORLD), "rebuild", f"--record={record}", f"--project={project}", f"--out-dir={out}")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    return json.loads((out / "rebuild-report.json").read_text())


def registry_get(path: str, accept: str = "") -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://{REGISTRY}{path}")
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


MANIFEST_ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])


def manifest(repo: str, ref: str) -> tuple[str, dict]:
    """(digest, manifest JSON) of repo:ref through the registry's HTTP API; ('', {}) if absent."""
    status, headers, body = registry_get(f"/v2/{repo}/manifests/{ref}", MANIFEST_ACCEPT)
    if status != 200:
        return "", {}
    return headers.get("Docker-Content-Digest", ""), json.loads(body)


def images_of(index: dict) -> list[dict]:
    """The platform entries of an index (BuildKit's attestation manifests, ``unknown/unknown``, left out)."""
    return [m for m in index.get("manifests", []) if m.get("platform", {}).get("os") != "unknown"]


def attestations_of(index: dict) -> dict[str, str]:
    """``{image digest: attestation manifest digest}`` of an index."""
    return {m["annotations"]["vnd.docker.reference.digest"]: m["digest"] for m in index.get("manifests", [])
            if m.get("annotations", {}).get("vnd.docker.reference.type") == "attestation-manifest"}


def _engine_problem() -> str:
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "Docker engine not reachable"
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        return "no buildx"
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        return "no qemu-aarch64 binfmt handler"
    digest, _ = manifest("crossdock/debian", "trixie")
    if not digest:
        return f"no base image crossdock/debian:trixie in the registry at {REGISTRY}"
    return ""


@pytest.fixture(scope="session")
def engine() -> None:
    """The real engine, provisioned by scripts/provision-local.sh; fails (not skips) under CI."""
    problem = _engine_problem()
    if problem:
        message = f"real tier needs the local world ({problem}): run scripts/provision-local.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass(frozen=True)
class Built:
    project: Path
    image: str  # repository inside the registry
    tag: str
    report: dict
    result: subprocess.CompletedProcess[str]

    @property
    def ref(self) -> str:
        return f"{REGISTRY}/{self.image}:{self.tag}"


def unique_image(prefix: str) -> str:
    return f"test/{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def built_example(engine, tmp_path_factory) -> Built:
    """The example, in a real git repo, built for amd64, arm64 and arm/v7 and pushed (once per session)."""
    project = make_project(tmp_path_factory.mktemp("example") / "hello")
    image = unique_image("hello")
    out = project.parent / "out"
    result = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64,arm", f"--project={project}",
                     f"--image={image}", "--tag=t1", f"--out-dir={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "build-report.json").read_text())
    return Built(project=project, image=image, tag="t1", report=report, result=result)


PASSWORD = "Corr3ct-Horse-crossdock"
WRONG = "Wr0ng-Battery-crossdock"


class RegistryProcess:
    """A distribution registry of the test's own on 127.0.0.1:<port>, optionally with htpasswd auth;
    it can be stopped and started again on the same storage."""

    def __init__(self, root: Path, port: int, *, auth: bool):
        self.root, self.port, self.proc = root, port, None
        root.mkdir(parents=True, exist_ok=True)
        self.address = f"127.0.0.1:{port}"
        config = ("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                  f"{root / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: {self.address}\n")
        if auth:
            htpasswd = subprocess.run(["htpasswd", "-Bbn", "crossdock", PASSWORD], capture_output=True, text=True,
                                      check=True).stdout
            (root / "htpasswd").write_text(htpasswd)
            config += f"auth:\n  htpasswd:\n    realm: crossdock-test\n    path: {root / 'htpasswd'}\n"
        (root / "config.yml").write_text(config)

    def start(self) -> None:
        try:
            urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)
            raise RuntimeError(f"{self.address} is already taken by another registry (a stray one from an "
                               f"earlier run?)")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{self.address} is already taken (HTTP {e.code})") from e
        except OSError:
            pass  # free
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.root / "config.yml")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):  # bounded wait for the port: 50 x 0.2 s
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401: it answers
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"registry on {self.address} did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def auth_registry(engine, tmp_path_factory):
    """A second registry on 127.0.0.1:5001 with htpasswd auth (user crossdock, password PASSWORD)."""
    reg = RegistryProcess(tmp_path_factory.mktemp("auth-registry"), 5001, auth=True)
    reg.start()
    yield reg.address
    reg.stop()
    subprocess.run(["docker", "logout", reg.address], capture_output=True)
