"""The real tier of `inv build`: real dockerd, buildx, QEMU binfmt and the registry on 127.0.0.1:5000.

The example is built once per session (``built_example``) for amd64, arm64 and arm/v7; the tests below
check it through the registry's HTTP API and by running each platform's image under QEMU, and then
break things on purpose (a failing arch, disabled emulators, a missing buildx, a secret in the project).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tasks.core.platforms import lookup
from tests.conftest import (
    LOCAL_WORLD,
    REGISTRY,
    compile_runs,
    git,
    images_of,
    make_project,
    manifest,
    run_inv,
    unique_image,
)

pytestmark = pytest.mark.real

BINFMT = Path("/proc/sys/fs/binfmt_misc")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=600)


def index_platforms(index: dict) -> list[str]:
    return sorted("/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                         m["platform"].get("variant", ""))))
                  for m in index["manifests"] if m["platform"]["os"] != "unknown")


def test_manifest_list_has_exactly_the_three_platforms(built_example):
    digest, index = manifest(built_example.image, built_example.tag)
    assert digest.startswith("sha256:")
    assert index["mediaType"].endswith("manifest.list.v2+json") or index["mediaType"].endswith("index.v1+json")
    assert index_platforms(index) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    report = built_example.report
    assert report["ok"] and report["manifest"]["digest"] == digest
    assert report["manifest"]["reference"] == built_example.ref
    by_platform = {m["platform"]["architecture"] + m["platform"].get("variant", ""): m["digest"]
                   for m in images_of(index)}
    for p in report["platforms"]:  # the index points at exactly the per-arch digests the build reported
        assert by_platform[lookup(p["name"]).suffix] == p["digest"]
        assert p["size"] > 1_000_000 and p["rust_target"] == lookup(p["name"]).rust_triple


def test_summary_table_lists_every_platform(built_example):
    out = built_example.result.stdout
    assert "platform" in out and "rust target" in out and "digest" in out
    for triple in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"):
        assert triple in out


@pytest.mark.parametrize("name", ["amd64", "arm64", "arm/v7"])
def test_each_platform_runs_and_reports_its_architecture(built_example, name):
    p = lookup(name)
    r = docker("run", "--rm", "--pull", "always", "--platform", p.docker, built_example.ref, "--version")
    assert r.stdout.strip() == f"hello-crossdock 0.1.0 ({p.rust_arch}-linux)"
    uname = docker("run", "--rm", "--platform", p.docker, "--entrypoint", "uname", built_example.ref, "-m")
    assert uname.stdout.strip() == p.uname_m


def test_image_metadata_non_root_and_labels_from_git(built_example):
    ref = f"{REGISTRY}/{built_example.image}@{built_example.report['platforms'][1]['digest']}"
    docker("pull", "--platform", "linux/arm64", ref)
    config = json.loads(docker("image", "inspect", ref).stdout)[0]
    assert config["Architecture"] == "arm64" and config["Os"] == "linux"
    assert config["Config"]["User"] == "10001:10001"
    assert config["Config"]["Entrypoint"] == ["/usr/local/bin/app"]
    labels = config["Config"]["Labels"]
    project = built_example.project
    assert labels["org.opencontainers.image.revision"] == git(project, "rev-parse", "HEAD")
    assert labels["org.opencontainers.image.version"] == f"0.1.0-g{git(project, 'rev-parse', '--short=7', 'HEAD')}"
    assert labels["org.opencontainers.image.title"] == "hello-crossdock"
    assert labels["dev.crossdock.vcs-branch"] == "main"
    commit_iso = git(project, "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ")
    assert labels["org.opencontainers.image.created"] == commit_iso
    who = docker("run", "--rm", "--platform", "linux/arm64", "--entrypoint", "id", ref)
    assert who.stdout.startswith("uid=10001(app) gid=10001(app)")


def test_service_answers_healthz(built_example):
    """The example is a real service: start the amd64 image, ask /healthz through a loopback port."""
    name = f"crossdock-test-{os.getpid()}"
    docker("run", "-d", "--name", name, "--platform", "linux/amd64", "-p", "127.0.0.1::8080", built_example.ref)
    try:
        port = docker("port", name, "8080/tcp").stdout.split(":")[-1].strip()
        import time
        import urllib.request
        body = b""
        for _ in range(50):  # bounded: 50 x 0.2 s
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    body = resp.read()
                    assert resp.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        assert body == b"ok\n"
    finally:
        docker("rm", "-f", name, check=False)


def test_one_failing_arch_leaves_the_manifest_list_alone(built_example, tmp_path):
    """arm/v7 fails to compile: amd64 still finishes and is reported, the tag is not created or moved. (Both
    are compiled by one cargo first: it goes on after arm/v7's error and names each platform's outcome; amd64
    is then built on its own.)"""
    project = make_project(tmp_path / "broken")
    main = project / "src" / "main.rs"
    broken = '\n#[cfg(target_arch = "arm")]\ncompile_error!("crossdock test: arm is broken");\n'
    main.write_text(main.read_text() + broken)
    before, _ = manifest(built_example.image, built_example.tag)
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm", f"--project={project}",
                f"--image={built_example.image}", f"--tag={built_example.tag}", f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 1
    assert "linux/arm/v7: FAILED" in r.stdout and "crossdock test: arm is broken" in r.stdout  # the log tail
    assert "linux/amd64: built in" in r.stdout
    assert "joint compile: arm/v7 FAILED" in r.stdout and "joint compile: amd64 compiled" in r.stdout
    assert "build failed for linux/arm/v7" in r.stderr
    assert f"not creating or moving {built_example.ref}" in r.stdout
    after, _ = manifest(built_example.image, built_example.tag)
    assert after == before
    report = json.loads((tmp_path / "out" / "build-report.json").read_text())
    assert not report["ok"] and report["manifest"]["reference"] == ""
    assert [(p["name"], p["ok"]) for p in report["platforms"]] == [("amd64", True), ("arm/v7", False)]


@contextmanager
def binfmt_disabled(*handlers: str):
    files = [BINFMT / h for h in handlers]
    states = [f.read_text().splitlines()[0] for f in files]
    try:
        for f in files:
            f.write_text("0")
        yield
    finally:
        for f, state in zip(files, states, strict=True):
            f.write_text("1" if state == "enabled" else "0")


def test_build_needs_no_emulator(built_example, tmp_path):
    """With qemu-aarch64 and qemu-arm off, a from-scratch arm64 + arm/v7 build still succeeds."""
    project = make_project(tmp_path / "noemu")
    image = unique_image("noemu")
    with binfmt_disabled("qemu-aarch64", "qemu-arm"):
        assert (BINFMT / "qemu-aarch64").read_text().startswith("disabled")
        probe = docker("run", "--rm", "--platform", "linux/arm64", "--entrypoint", "true",
                       f"{REGISTRY}/crossdock/debian:trixie", check=False)
        assert probe.returncode != 0  # emulation really is off
        r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=arm64,arm", "--no-cache", f"--project={project}",
                    f"--image={image}", "--tag=noemu", f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    _, index = manifest(image, "noemu")
    assert index_platforms(index) == ["linux/arm/v7", "linux/arm64"]
    # And the result is a working arm64 image once the emulator is back.
    out = docker("run", "--rm", "--pull", "always", "--platform", "linux/arm64", f"{REGISTRY}/{image}:noemu",
                 "--version")
    assert "(aarch64-linux)" in out.stdout


def test_load_mode_needs_no_registry_push(built_example, tmp_path):
    image = unique_image("load")
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64", "--output=load", f"--image={image}",
                "--tag=local", f"--project={built_example.project}", f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    ref = f"{REGISTRY}/{image}:local-amd64"
    assert docker("run", "--rm", ref, "--version").stdout.startswith("hello-crossdock 0.1.0 (x86_64-linux)")
    assert manifest(image, "local-amd64") == ("", {})  # loaded, not pushed
    docker("image", "rm", ref, check=False)


def test_secrets_and_build_output_never_reach_the_builder(built_example, tmp_path):
    """The staged Dockerfile.dockerignore keeps .env, .git and target/ out of the build context."""
    project = make_project(tmp_path / "ctx")
    (project / ".env").write_text("REGISTRY_PASSWORD=hunter2-crossdock\n")
    (project / "sub").mkdir()
    (project / "sub" / ".env.local").write_text("TOKEN=abc\n")
    (project / ".dockerignore").write_text("README.md\n!.env\n")  # a project rule trying to let .env in
    (project / "README.md").write_text("docs\n")
    from tasks.steps.build import stage_build_files
    staged = stage_build_files(project)
    (project / "target" / "release").mkdir(parents=True)
    (project / "target" / "release" / "big").write_text("artifact")
    # Same ignore file, a Dockerfile that copies the whole context out.
    shutil.copyfile(staged / "Dockerfile.dockerignore", staged / "Context.Dockerfile.dockerignore")
    (staged / "Context.Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    dest = tmp_path / "context-out"
    docker("buildx", "build", "-f", str(staged / "Context.Dockerfile"), "-o", f"type=local,dest={dest}", str(project))
    sent = sorted(p.relative_to(dest / "ctx").as_posix() for p in (dest / "ctx").rglob("*") if p.is_file())
    assert "src/main.rs" in sent and "Cargo.toml" in sent and "target/crossdock/sh/platform.sh" in sent
    assert not [p for p in sent if ".env" in p or p.startswith(".git/") or p == "README.md"
                or p.startswith("target/release")], sent


def test_only_a_project_with_private_sources_stages_the_secret_and_ssh_mounts(tmp_path):
    """The compile steps mount the credentials' secrets and the SSH agent only for a project that may need them
    (BuildKit spends seconds before each step that mounts them); the build, its SBOM and a rebuild stage alike."""
    from tasks.steps.build import stage_build_files

    def compile_mounts(project: Path) -> list[str]:
        runs = compile_runs((stage_build_files(project) / "Dockerfile").read_text())
        assert len(runs) == 6, runs
        return [m for run in runs for m in run.split() if m.startswith(("--mount=type=secret", "--mount=type=ssh"))]

    plain = make_project(tmp_path / "plain")
    assert compile_mounts(plain) == []
    private = make_project(tmp_path / "private")
    (private / ".cargo").mkdir()
    (private / ".cargo" / "config.toml").write_text('[registries.my-corp]\nindex = "sparse+https://crates.corp.invalid/"\n')
    mounts = compile_mounts(private)
    assert len(mounts) == 6 * 4 and mounts.count("--mount=type=ssh") == 6
    assert {m.split("id=")[1] for m in mounts if "id=" in m} == {"cargo-credentials", "git-credentials",
                                                               "ssh-known-hosts"}


@pytest.fixture
def buildx_plugin_hidden():
    plugin = Path("/usr/libexec/docker/cli-plugins/docker-buildx")
    hidden = plugin.with_name("docker-buildx.hidden-by-test")
    assert plugin.exists(), "buildx is expected at /usr/libexec/docker/cli-plugins (scripts/provision-local.sh)"
    plugin.rename(hidden)
    try:
        yield
    finally:
        hidden.rename(plugin)


def test_missing_buildx_is_a_one_line_error(engine, buildx_plugin_hidden, tmp_path):
    r = run_inv("build", "--platforms=amd64", env={"HOME": str(tmp_path)})
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "docker buildx is not installed" in errors[0]


def test_dry_run_builds_and_pushes_nothing(engine, tmp_path):
    image = unique_image("dry")
    r = run_inv("-f", str(LOCAL_WORLD), "--dry", "build", "--platforms=amd64,arm64", f"--image={image}",
                f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stderr
    # one cargo for both platforms, then each platform's image
    assert r.stdout.count("docker buildx build ") == 3 and "imagetools create" in r.stdout
    assert r.stdout.count("--target joint-out ") == 1
    # each OCI export (an engine that rewrites timestamps with the docker driver) shows the push that follows it
    assert r.stdout.count("skopeo copy ") == r.stdout.count(",rewrite-timestamp=true")
    assert manifest(image, "dev") == ("", {}) and manifest(image, "staging-dev-amd64") == ("", {})
    assert not (tmp_path / "out").exists()


def test_reverted_source_is_rebuilt_not_served_from_a_stale_cache(engine, tmp_path):
    """A -> B -> A again: BuildKit hands back the cached COPY of A with A's old mtimes, which would make
    cargo keep B's binary. The third image must print A's output."""
    project = make_project(tmp_path / "revert")
    main = project / "src" / "main.rs"
    original = main.read_text()
    image = unique_image("revert")

    def build_and_run(tag: str) -> str:
        r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64", f"--project={project}",
                    f"--image={image}", f"--tag={tag}", f"--out-dir={tmp_path / 'out'}")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        return docker("run", "--rm", "--pull", "always", f"{REGISTRY}/{image}:{tag}", "--version").stdout.strip()

    first = build_and_run("a")
    main.write_text(original.replace('format!("{NAME} {VERSION} (', 'format!("{NAME} {VERSION}-changed ('))
    assert "-changed" in build_and_run("b")
    main.write_text(original)
    assert build_and_run("a-again") == first


def test_env_files_never_reach_the_real_build(engine, tmp_path):
    """End to end through `inv build`: the project's build script, which runs inside the builder on the
    build context, fails the build if a .env, .git or target/ artifact is there."""
    project = make_project(tmp_path / "secrets")
    (project / ".env").write_text("REGISTRY_PASSWORD=hunter2-crossdock\n")
    (project / "sub").mkdir()
    (project / "sub" / ".env.local").write_text("TOKEN=abc\n")
    (project / ".dockerignore").write_text("!.env\n")  # a project rule trying to let it in
    (project / "target" / "release").mkdir(parents=True)
    (project / "target" / "release" / "stale").write_text("artifact")
    (project / "build.rs").write_text(
        'fn main() {\n'
        '    for f in [".env", "sub/.env.local", ".git", "target/release/stale"] {\n'
        '        if std::path::Path::new(f).exists() { panic!("{f} reached the build context"); }\n'
        '    }\n'
        '    assert!(std::path::Path::new("src/main.rs").exists(), "not running in the build context");\n'
        '    println!("cargo:warning=crossdock context check passed");\n'
        '}\n')
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64", f"--project={project}",
                f"--image={unique_image('ctx')}", f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "crossdock context check passed" in (tmp_path / "out" / "build" / "amd64.log").read_text()


def test_cargo_downloads_are_shared_but_cargo_home_config_is_not(engine, tmp_path):
    """CARGO_HOME's registry/ is the shared cache mount (a marker left there by one build is seen by the
    next), while a config.toml a build script writes to CARGO_HOME is gone by the next build."""
    project = make_project(tmp_path / "cargo-home")
    marker = f"crossdock-test-{os.urandom(4).hex()}"
    (project / "build.rs").write_text(
        'use std::path::Path;\n'
        'fn main() {\n'
        '    let home = std::env::var("CARGO_HOME").expect("CARGO_HOME is set in the builder");\n'
        '    let config = Path::new(&home).join("config.toml");\n'
        f'    let marker = Path::new(&home).join("registry").join("{marker}");\n'
        '    println!("cargo:warning=config-before={} marker-before={}", config.exists(), marker.exists());\n'
        '    std::fs::write(&config, "# written by a build script\\n").unwrap();\n'
        '    std::fs::write(&marker, "seen").unwrap();\n'
        '    println!("cargo:rerun-if-changed=src/main.rs");\n'
        '}\n')
    log = tmp_path / "out" / "build" / "amd64.log"

    def build() -> str:
        r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64", f"--project={project}",
                    f"--image={unique_image('cargohome')}", f"--out-dir={tmp_path / 'out'}")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        return log.read_text()

    assert "config-before=false marker-before=false" in build()
    main = project / "src" / "main.rs"
    main.write_text(main.read_text() + "\n// changed: the build script runs again\n")
    assert "config-before=false marker-before=true" in build()


def _build_script_intervals(log: str) -> tuple[float, float]:
    start = float(log.split("build-script-start=")[1].split()[0])
    end = float(log.split("build-script-end=")[1].split()[0])
    return start, end


@pytest.mark.parametrize("slots, arches", [("1", ("amd64", "arm64")), ("2", ("amd64", "arm64", "arm")),
                                           ("0", ("amd64", "arm64"))])
def test_compile_slots_bound_parallel_compiles_on_the_daemon(engine, tmp_path, slots, arches):
    """The arches start together and each compile step sleeps 10 s in a build script. With N slots no more
    than N compiles ever overlap (the others say they waited); with no limit nobody waits. (One cargo per
    platform, as when their features differ or each CI job builds one.)"""
    project = make_project(tmp_path / "slots")
    (project / "build.rs").write_text(
        "fn now() -> f64 { std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap()"
        ".as_secs_f64() }\n"
        "fn main() {\n"
        '    println!("cargo:warning=build-script-start={:.3}", now());\n'
        "    std::thread::sleep(std::time::Duration::from_secs(10));\n"
        '    println!("cargo:warning=build-script-end={:.3}", now());\n'
        "}\n")
    r = run_inv("-f", str(LOCAL_WORLD), "build", f"--platforms={','.join(arches)}", f"--project={project}",
                f"--compile-slots={slots}", "--compile-tokens=0", "--joint-compile=off",
                f"--image={unique_image('slots')}",
                f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    logs = [(tmp_path / "out" / "build" / f"{lookup(a).suffix}.log").read_text() for a in arches]
    waited = [log for log in logs if f"waiting for one of {slots} compile slot(s)" in log]
    intervals = [_build_script_intervals(log) for log in logs]
    # the most compiles running at one moment: count the intervals covering each start
    most = max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)
    if slots == "0":
        assert waited == [] and not any("compile slot" in log for log in logs)
    else:
        assert most <= int(slots), f"{most} compiles overlapped with {slots} slot(s): {sorted(intervals)}"
        assert all("got compile slot" in log for log in waited)
