"""The real tier of `inv release`: real git repositories, real builds, smoke tests and registries."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    EXAMPLE,
    INV,
    LOCAL_WORLD,
    MANIFEST_ACCEPT,
    PASSWORD,
    REGISTRY,
    WRONG,
    RegistryProcess,
    git,
    images_of,
    make_project,
    manifest,
    run_inv,
    unique_image,
)

pytestmark = pytest.mark.real
ID = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]


def set_version(repo: Path, version: str, *, tag: str | None = None, arm_broken: bool = False) -> None:
    """Commit Cargo.toml/Cargo.lock at `version` (and optionally a compile error on arm), then tag."""
    for name in ("Cargo.toml", "Cargo.lock"):
        path = repo / name
        path.write_text(re.sub(r'(name = "hello-crossdock"\nversion = )"[^"]+"', rf'\1"{version}"', path.read_text()))
    if arm_broken:
        main = repo / "src" / "main.rs"
        main.write_text(main.read_text() + '\n#[cfg(target_arch = "arm")]\ncompile_error!("arm is broken");\n')
    git(repo, *ID, "commit", "-q", "-am", f"version {version}")
    if tag is not None:
        git(repo, "tag", tag)


def versioned_project(tmp_path: Path, version: str, *, tag: str | None = "default") -> Path:
    repo = make_project(tmp_path / f"p-{version}")
    set_version(repo, version, tag=f"v{version}" if tag == "default" else tag)
    return repo


def release(project: Path, image: str, *args: str, out: Path, env: dict[str, str] | None = None):
    return run_inv("-f", str(LOCAL_WORLD), "release", f"--project={project}", f"--image={image}",
                   f"--out-dir={out}", *args, env=env)


def tag_digests(image: str, tags: list[str], registry: str = REGISTRY) -> dict[str, str]:
    import urllib.request

    from tests.conftest import MANIFEST_ACCEPT
    result = {}
    for tag in tags:
        req = urllib.request.Request(f"http://{registry}/v2/{image}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": MANIFEST_ACCEPT})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                result[tag] = resp.headers["Docker-Content-Digest"]
        except urllib.error.HTTPError:
            result[tag] = ""
    return result


def test_release_publishes_the_tested_index_under_every_tag(engine, tmp_path):
    project = versioned_project(tmp_path, "1.2.3")
    image = unique_image("rel")
    r = release(project, image, out=tmp_path / "out")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    sha = git(project, "rev-parse", "--short=7", "HEAD")
    tags = ["1.2.3", "1.2", "1", "latest", f"sha-{sha}"]
    digests = tag_digests(image, tags)
    assert len(set(digests.values())) == 1 and next(iter(digests.values())).startswith("sha256:")
    index_digest = digests["latest"]
    _, index = manifest(image, "latest")
    images = [m for m in index["manifests"] if m["platform"]["os"] != "unknown"]
    assert sorted(m["platform"]["architecture"] + m["platform"].get("variant", "") for m in images) == [
        "amd64", "arm64", "armv7"]
    # Docker 26.1 with the containerd store: every platform keeps its SLSA provenance attestation, and the
    # audit said it checked them.
    about = {m["annotations"]["vnd.docker.reference.digest"]: m["digest"] for m in index["manifests"]
             if m.get("annotations", {}).get("vnd.docker.reference.type") == "attestation-manifest"}
    assert sorted(about) == sorted(m["digest"] for m in images)
    for attestation in about.values():
        _, statement = manifest(image, attestation)
        assert any(layer["annotations"]["in-toto.io/predicate-type"].startswith("https://slsa.dev/provenance/")
                   for layer in statement["layers"]), statement
    assert "audit: every platform keeps its SLSA provenance attestation" in r.stdout
    out = r.stdout
    assert out.index("smoke-testing") < out.index("publishing")  # tested before anything was tagged
    record = json.loads((tmp_path / "out" / "releases" / "1.2.3.json").read_text())
    assert record["index_digest"] == index_digest and record["commit"] == git(project, "rev-parse", "HEAD")
    assert sorted(record["tags"][f"{REGISTRY}/{image}"]) == sorted(tags)
    assert {p["platform"] for p in record["platforms"]} == {"linux/amd64", "linux/arm64", "linux/arm/v7"}
    assert all(p["digest"].startswith("sha256:") for p in record["platforms"])
    assert {p["digest"]: p["attestation"] for p in record["platforms"]} == about
    assert record["engine"]["docker"].startswith("26.1") and record["engine"]["image_store"] == "containerd"
    assert record["build"]["args"]["BUILDER_IMAGE"].startswith(f"{REGISTRY}/crossdock/debian:trixie@sha256:")
    assert record["build"]["provenance"] == "max" and record["build"]["reproducible"] is True
    assert record["base_images"]["runtime"]["linux/arm64"].startswith("sha256:")
    assert record["smoke"] == {"linux/amd64": "ok", "linux/arm64": "ok", "linux/arm/v7": "ok"}
    # The per-arch pushes used staging tags only.
    listed = json.loads(subprocess.run(["curl", "-s", f"http://{REGISTRY}/v2/{image}/tags/list"],
                                       capture_output=True, text=True).stdout)["tags"]
    assert sorted(t for t in listed if t not in tags) == sorted(
        ["staging-1.2.3", "staging-1.2.3-amd64", "staging-1.2.3-arm64", "staging-1.2.3-armv7"])
    # Running it again is a no-op that says so.
    again = release(project, image, out=tmp_path / "out")
    assert again.returncode == 0 and "nothing to do" in again.stdout and "build started" not in again.stdout


@pytest.mark.parametrize("case", ["dirty", "untagged", "mismatch", "invalid"])
def test_guards_refuse_before_any_build_or_push(engine, tmp_path, case):
    project = make_project(tmp_path / "p")
    image = unique_image("guard")
    if case == "dirty":
        set_version(project, "1.0.0", tag="v1.0.0")
        (project / "src" / "main.rs").write_text("// edited\n" + (project / "src" / "main.rs").read_text())
        expected = "uncommitted changes"
    elif case == "untagged":
        set_version(project, "1.0.0")
        expected = "is not tagged: tag the release commit, e.g. `git tag v1.0.0`"
    elif case == "mismatch":
        set_version(project, "1.0.0", tag="v1.0.1")
        expected = "the tag says 1.0.1 but Cargo.toml says 1.0.0"
    else:
        set_version(project, "1.0.0", tag="v1.0")
        expected = "tag 'v1.0' on HEAD is not a valid version"
    (project / "target").mkdir(exist_ok=True)  # ignored files never make a tree dirty
    (project / "target" / "junk").write_text("x")
    r = release(project, image, out=tmp_path / "out")
    assert r.returncode == 1
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert "build started" not in r.stdout and not (tmp_path / "out").exists()
    assert manifest(image, "latest") == ("", {})


def test_failed_platform_tags_nothing(engine, tmp_path):
    image = unique_image("fail")
    base = f"{REGISTRY}/crossdock/debian:trixie"
    subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", f"{REGISTRY}/{image}:latest", base],
                   check=True, capture_output=True)
    before = tag_digests(image, ["latest", "1"])
    project = make_project(tmp_path / "p")
    set_version(project, "2.0.0", tag="v2.0.0", arm_broken=True)
    r = release(project, image, "--platforms=amd64,arm", out=tmp_path / "out")
    assert r.returncode == 1
    assert "the build failed: nothing was tagged" in r.stderr and "arm is broken" in r.stdout
    assert "smoke-testing" not in r.stdout and "publishing" not in r.stdout
    assert tag_digests(image, ["latest", "1"]) == before
    assert tag_digests(image, ["2.0.0"]) == {"2.0.0": ""}


def test_latest_and_major_never_move_backwards_and_promote_rolls_back(engine, tmp_path):
    image = unique_image("order")
    repo = make_project(tmp_path / "p")
    out = tmp_path / "out"
    results = {}
    for version in ("1.2.0", "1.1.5", "1.3.0-rc.1"):
        set_version(repo, version, tag=f"v{version}")
        r = release(repo, image, "--platforms=amd64", out=out)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        results[version] = tag_digests(image, [version.replace("+", "_")])[version]
    d = tag_digests(image, ["latest", "1", "1.2", "1.1", "1.2.0", "1.1.5", "1.3.0-rc.1", "1.3"])
    assert d["latest"] == d["1"] == d["1.2"] == d["1.2.0"] == results["1.2.0"]
    assert d["1.1"] == d["1.1.5"] == results["1.1.5"] != results["1.2.0"]
    assert d["1.3.0-rc.1"] == results["1.3.0-rc.1"] and d["1.3"] == ""
    # 1.2.1 moves latest forward; promoting the 1.2.0 record rolls it back without building.
    set_version(repo, "1.2.1", tag="v1.2.1")
    assert release(repo, image, "--platforms=amd64", out=out).returncode == 0
    assert tag_digests(image, ["latest"])["latest"] != results["1.2.0"]
    r = run_inv("release", f"--promote-from={out / 'releases' / '1.2.0.json'}", f"--out-dir={out}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "build started" not in r.stdout
    assert tag_digests(image, ["latest", "1", "1.2"]) == {t: results["1.2.0"] for t in ("latest", "1", "1.2")}


def test_dry_release_changes_nothing(engine, tmp_path):
    project = versioned_project(tmp_path, "3.0.0")
    image = unique_image("dry")
    r = run_inv("-f", str(LOCAL_WORLD), "--dry", "release", f"--project={project}", f"--image={image}",
                f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 0, r.stderr
    # the compile for all three platforms (one cargo), then each platform's image
    assert r.stdout.count("docker buildx build ") == 4 and r.stdout.count("--target joint-out ") == 1
    creates = [line for line in r.stdout.splitlines() if line.startswith("docker buildx imagetools create --tag")]
    assert {line.split()[5].rsplit(":", 1)[1] for line in creates} >= {"3.0.0", "3.0", "3", "latest"}
    assert manifest(image, "latest") == ("", {}) and manifest(image, "staging-3.0.0") == ("", {})
    assert git(project, "status", "--porcelain") == "" and git(project, "tag") == "v3.0.0"


def test_registry_stopped_while_publishing_then_rerun_completes(engine, tmp_path):
    reg = RegistryProcess(tmp_path / "reg", 5002, auth=False)
    reg.start()
    try:
        project = versioned_project(tmp_path, "4.0.0")
        image = "test/stopped"
        # Something older is already published: its tags must end on the old or the complete new index.
        subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", f"{reg.address}/{image}:latest",
                        f"{REGISTRY}/crossdock/debian:trixie"], check=True, capture_output=True)
        old = tag_digests(image, ["latest"], registry=reg.address)["latest"]
        argv = [*INV, "-f", str(LOCAL_WORLD), "release", f"--project={project}", f"--image={image}",
                f"--registry={reg.address}", "--platforms=amd64,arm64", f"--out-dir={tmp_path / 'out'}"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("[crossdock] publishing "):
                    reg.stop()  # after the per-arch pushes and the smoke test, before the tag updates
                    break
            rest, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        out = "".join(lines) + rest
        assert proc.returncode == 1, out + err
        assert "publishing stopped" in err and "run the release again" in err
        assert "transient registry error, retry" in out  # connection refused is retried before giving up
        reg.start()
        after = tag_digests(image, ["latest", "4.0.0", "4.0", "4"], registry=reg.address)
        new_index = ""
        for digest in after.values():
            if digest and digest != old:
                new_index = new_index or digest
                assert digest == new_index  # every moved tag is on the one complete new index
        assert after["latest"] in (old, new_index or old)
        r = release(project, image, f"--registry={reg.address}", "--platforms=amd64,arm64", out=tmp_path / "out")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        final = tag_digests(image, ["latest", "4.0.0", "4.0", "4"], registry=reg.address)
        assert len(set(final.values())) == 1 and final["latest"] != old
        index = json.loads(subprocess.run(  # an OCI index: the platforms' attestations came along
            ["curl", "-s", "-H", f"Accept: {MANIFEST_ACCEPT}", f"http://{reg.address}/v2/{image}/manifests/latest"],
            capture_output=True, text=True).stdout)
        assert sorted(m["platform"]["architecture"] for m in images_of(index)) == ["amd64", "arm64"]
        if after["4.0.0"]:  # the version tag made it before the stop: the re-run reuses that tested index
            assert "reusing that index, no rebuild" in r.stdout and final["latest"] == after["4.0.0"]
    finally:
        reg.stop()

def test_auth_registry_wrong_password_then_release_without_leaking(auth_registry, tmp_path):
    project = versioned_project(tmp_path, "5.0.0")
    image = "test/auth"
    home = tmp_path / "home"
    home.mkdir()
    env = {"REGISTRY_USER": "crossdock", "REGISTRY_PASSWORD": WRONG, "HOME": str(home)}
    args = (f"--registry={auth_registry}", "--platforms=amd64")
    r = release(project, image, *args, out=tmp_path / "out-wrong", env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "unauthorized" in r.stderr.lower() or "401" in r.stderr
    assert "build started" not in r.stdout and WRONG not in r.stdout + r.stderr
    env["REGISTRY_PASSWORD"] = PASSWORD
    r = release(project, image, *args, out=tmp_path / "out", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert f"logged in to {auth_registry} as crossdock" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    # The login lived in a private Docker config that is gone: nothing under $HOME keeps it.
    for f in home.rglob("*"):
        if f.is_file():
            assert auth_registry not in f.read_text(errors="replace"), f
    assert not list(Path("/tmp").glob("crossdock-docker-config-*"))
    for log in (tmp_path / "out").rglob("*"):
        if log.is_file():
            assert PASSWORD not in log.read_text(errors="replace"), log
    # Not in any layer or the history of the released image.
    ref = f"{auth_registry}/{image}:5.0.0"
    config = tmp_path / "docker-config"
    subprocess.run(["docker", "--config", str(config), "login", "--username", "crossdock", "--password-stdin",
                    auth_registry], input=PASSWORD, text=True, check=True, capture_output=True)
    subprocess.run(["docker", "--config", str(config), "pull", ref], check=True, capture_output=True)
    history = subprocess.run(["docker", "history", "--no-trunc", ref], capture_output=True, text=True).stdout
    assert PASSWORD not in history
    saved = subprocess.run(["docker", "save", ref], capture_output=True, check=True).stdout
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            data = outer.extractfile(member).read() if member.isfile() else b""
            assert PASSWORD.encode() not in data, member.name
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for f in layer.getmembers():
                        if f.isfile():
                            assert PASSWORD.encode() not in layer.extractfile(f).read(), f.name


def test_example_cargo_version_is_what_the_tests_rewrite():
    assert 'name = "hello-crossdock"\nversion = "0.1.0"' in (EXAMPLE / "Cargo.toml").read_text()
    assert 'name = "hello-crossdock"\nversion = "0.1.0"' in (EXAMPLE / "Cargo.lock").read_text()


def test_missing_emulator_stops_the_release_before_building(engine, tmp_path):
    from tests.test_build_real import binfmt_disabled

    project = versioned_project(tmp_path, "6.0.0")
    with binfmt_disabled("qemu-arm"):
        r = release(project, unique_image("noqemu"), out=tmp_path / "out")
    assert r.returncode == 1
    assert "linux/arm/v7: the QEMU handler qemu-arm is disabled" in r.stderr
    assert "echo 1 > /proc/sys/fs/binfmt_misc/qemu-arm" in r.stderr and "build started" not in r.stdout
