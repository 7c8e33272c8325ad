"""The real tier of the dependency layers and the registry build cache (#14 part 2).

One small workspace (a library crate using a crate vendored from Debian, and the binary crate), built for
arm64 several times: a change in the binary's crate re-runs neither dependency layer, a change in the library
leaves the deps layer cached, a new checkout directory starts its target dir from the layers, and the
registry cache carries the compiled dependencies (the workspace's library too) to the registry and back.
(A build after `docker buildx prune -af`, a runner that really starts empty, is benchmarks/run.py
--fresh-runner: the suite never empties the builder's cache, which other tests and builds share.)
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import LOCAL_WORLD, REGISTRY, git, manifest, registry_get, run_inv, unique_image
from tests.rust_fixtures import ID, workspace_project

pytestmark = pytest.mark.real

TRIPLE = "aarch64-unknown-linux-gnu"
DEPS_STEP, WORKSPACE_STEP = "cook 4/6", "cook 6/6"  # the two RUNs of docker/Dockerfile's cook stage


@pytest.fixture(scope="session")
def workspace(engine, tmp_path_factory) -> tuple[Path, str]:
    image = unique_image("ws")
    project = workspace_project(tmp_path_factory.mktemp("cache") / "ws")
    # Sources of this run's own: layers cached by an earlier run on this machine must not stand in for the
    # steps these tests watch (a cached step prints nothing).
    lib = project / "crates" / "numfmt" / "src" / "lib.rs"
    lib.write_text(lib.read_text() + f"// {image}\n")
    git(project, *ID, "commit", "-qam", "this run's sources")
    return project, image


def build(project: Path, image: str, out: Path, *flags: str) -> str:
    """`inv build` for arm64; the arch's BuildKit log."""
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=arm64", f"--project={project}", f"--image={image}",
                "--tag=t", f"--out-dir={out}", *flags)
    assert r.returncode == 0, r.stdout + r.stderr
    return (out / "build" / "arm64.log").read_text()


def ran(log: str, step: str) -> bool:
    """Whether a step of the build ran (False: BuildKit took it from its cache)."""
    ids = re.findall(rf"^#(\d+) \[{re.escape(step)}\] ", log, re.M)
    assert ids, f"no step [{step}] in the log"
    return not any(re.search(rf"^#{i} CACHED$", log, re.M) for i in ids)


def compiled(log: str) -> set[str]:
    return set(re.findall(r" Compiling (\S+) v", log))


def run_image(image: str) -> str:
    r = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", "linux/arm64",
                        f"{REGISTRY}/{image}:t"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def edit(project: Path, rel: str, old: str, new: str) -> None:
    path = project / rel
    path.write_text(path.read_text().replace(old, new))
    git(project, *ID, "commit", "-qam", f"edit {rel}")


def test_a_change_rebuilds_only_what_it_touches(workspace, tmp_path):
    project, image = workspace
    build(project, image, tmp_path / "out1")
    assert run_image(image) == "ws-app 42 MARK-0"

    edit(project, "crates/app/src/main.rs", "MARK-0", "MARK-1")  # the binary's own crate
    log = build(project, image, tmp_path / "out2")
    assert not ran(log, DEPS_STEP) and not ran(log, WORKSPACE_STEP)  # both dependency layers CACHED
    assert compiled(log) == {"ws-app"}
    assert run_image(image) == "ws-app 42 MARK-1"  # the real crate, not the stub, was compiled

    edit(project, "crates/numfmt/src/lib.rs", "itoa::Buffer::new().format(n).to_string()",
         'format!("n={}", itoa::Buffer::new().format(n))')  # the workspace's library
    log = build(project, image, tmp_path / "out3")
    assert not ran(log, DEPS_STEP)
    # No registry cache: the workspace layer is a no-op, the target dir's cache mount recompiles the library
    assert "workspace layer off" in log
    assert compiled(log) == {"numfmt", "ws-app"}
    assert run_image(image) == "ws-app n=42 MARK-1"

    # A new checkout directory (a new cargo target dir): it starts from the deps layer, so the vendored
    # crate is not compiled again.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    log = build(clone, image, tmp_path / "out4")
    assert "starts from the dependency layers" in log
    assert compiled(log) == {"numfmt", "ws-app"}
    assert run_image(image) == "ws-app n=42 MARK-1"


def layer_members(repo: str, layer: dict) -> list[str]:
    status, _, blob = registry_get(f"/v2/{repo}/blobs/{layer['digest']}")
    assert status == 200
    if layer["mediaType"].endswith("+zstd"):
        blob = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        return tar.getnames()


def test_registry_cache_round_trip(workspace, tmp_path):
    project, image = workspace
    log = build(project, image, tmp_path / "out1", "--cache=on")
    assert "exporting cache to registry" in log and "writing cache manifest" in log
    digest, index = manifest(image, "buildcache-arm64")
    assert digest, "no cache in the registry"
    layers = [m for m in index["manifests"] if "layer" in m["mediaType"]]
    assert any(m["mediaType"].endswith("+zstd") for m in layers)  # new layers; the base image's stay gzip
    # The dependency layers travel: the compiled vendored crate and the workspace's library are in the cache.
    members = [name for m in layers if m["size"] < 50 * 2**20 for name in layer_members(image, m)]
    rlibs = [n for n in members if n.startswith(f"cook/target/{TRIPLE}/release/deps/") and n.endswith(".rlib")]
    assert any("/libitoa-" in n for n in rlibs) and any("/libnumfmt-" in n for n in rlibs), rlibs

    # Another checkout reads the cache back (--cache=read: imported, not exported); its new target dir starts
    # from the dependency layers, the workspace's library included: only the binary's crate compiles.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    log = build(clone, image, tmp_path / "out2", "--cache=read")
    assert "starts from the dependency layers" in log and compiled(log) == {"ws-app"}
    argv = log.splitlines()[0]
    assert f"--cache-from type=registry,ref={REGISTRY}/{image}:buildcache-arm64" in argv
    assert "--cache-to" not in argv and "exporting cache to registry" not in log
    imported = re.search(rf"^#(\d+) importing cache manifest from {re.escape(REGISTRY)}/{re.escape(image)}:"
                         rf"buildcache-arm64$", log, re.M)
    assert imported and not re.search(rf"^#{imported.group(1)} ERROR", log, re.M), log[-3000:]
    report = json.loads((tmp_path / "out2" / "build-report.json").read_text())
    assert report["ok"]


def test_switching_slim_and_minimal_does_not_recompile(engine, tmp_path):
    """Only the static flavour changes the compile: slim -> minimal reuses the compile step and the
    dependency layers (BuildKit's cache), and builds only the runtime tree."""
    from tests.conftest import make_project

    project = make_project(tmp_path / "hello")
    main = project / "src" / "main.rs"
    main.write_text(main.read_text() + f"// {tmp_path.name}\n")  # this run's own sources: the first build compiles
    git(project, *ID, "commit", "-qam", "this run's sources")
    image = unique_image("flavours")
    first = build(project, image, tmp_path / "slim")
    assert ran(first, "build 3/3")
    second = build(project, image, tmp_path / "minimal", "--runtime=minimal")
    assert not ran(second, "build 3/3") and not ran(second, DEPS_STEP), second[-3000:]
    # (whether the minimal root filesystem step runs depends on what else this machine built: not asserted)
