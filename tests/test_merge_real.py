"""One CI job per architecture, then a merge job (Docker's "distribute the build across multiple runners"):
two clones of one commit, each building one arch with `--no-join`, joined by `inv merge`."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import (
    LOCAL_WORLD,
    REGISTRY,
    attestations_of,
    git,
    images_of,
    make_project,
    manifest,
    run_inv,
    unique_image,
)

pytestmark = pytest.mark.real
ID = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]


def job(clone, platform: str, image: str, out) -> subprocess.CompletedProcess[str]:
    return run_inv("-f", str(LOCAL_WORLD), "build", f"--platforms={platform}", f"--project={clone}",
                   f"--image={image}", "--tag=merged", f"--out-dir={out}", "--no-join")


def test_per_arch_jobs_merge_into_one_index_and_a_mismatch_tags_nothing(engine, tmp_path):
    origin = make_project(tmp_path / "origin")
    clones = {}
    for arch in ("amd64", "arm64"):
        clones[arch] = tmp_path / f"runner-{arch}" / "hello"
        subprocess.run(["git", "clone", "-q", str(origin), str(clones[arch])], check=True)
    image = unique_image("merge")
    for arch in ("amd64", "arm64"):
        r = job(clones[arch], arch, image, tmp_path / f"out-{arch}")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        assert "not joining (--no-join)" in r.stdout
    assert manifest(image, "merged") == ("", {})  # no job moved the tag
    reports = [f"--report={tmp_path / f'out-{arch}' / 'build-report.json'}" for arch in ("amd64", "arm64")]
    r = run_inv("-f", str(LOCAL_WORLD), "merge", "--platforms=amd64,arm64", *reports,
                f"--out-dir={tmp_path / 'out-merge'}")
    assert r.returncode == 0, r.stdout + r.stderr
    digest, index = manifest(image, "merged")
    assert sorted(m["platform"]["architecture"] for m in images_of(index)) == ["amd64", "arm64"]
    merged = json.loads((tmp_path / "out-merge" / "build-report.json").read_text())
    assert merged["manifest"] == {"reference": f"{REGISTRY}/{image}:merged", "digest": digest}
    per_arch = {json.loads((tmp_path / f"out-{a}" / "build-report.json").read_text())["platforms"][0]["digest"]
                for a in ("amd64", "arm64")}
    assert {m["digest"] for m in images_of(index)} == per_arch
    # each job's provenance attestation (Docker 26.1, containerd store) survives the merge
    jobs = [json.loads((tmp_path / f"out-{a}" / "build-report.json").read_text())["platforms"][0]
            for a in ("amd64", "arm64")]
    assert attestations_of(index) == {p["digest"]: p["attestation"] for p in jobs} and all(
        p["attestation"] for p in jobs)
    # the merged report is what `inv smoke` tests
    s = run_inv("-f", str(LOCAL_WORLD), "smoke", f"--out-dir={tmp_path / 'out-merge'}")
    assert s.returncode == 0, s.stdout[-3000:] + s.stderr

    # a job that built another commit is refused, and the tag stays where it was
    (clones["arm64"] / "README.md").write_text("changed\n")
    git(clones["arm64"], *ID, "add", "-A")
    git(clones["arm64"], *ID, "commit", "-q", "-m", "another commit")
    r = job(clones["arm64"], "arm64", image, tmp_path / "out-arm64-b")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    bad = [reports[0], f"--report={tmp_path / 'out-arm64-b' / 'build-report.json'}"]
    r = run_inv("-f", str(LOCAL_WORLD), "merge", "--platforms=amd64,arm64", *bad, f"--out-dir={tmp_path / 'o'}")
    assert r.returncode == 1 and "differ in commit" in r.stderr and "nothing was tagged" in r.stderr
    # and so is a set that lacks an arch
    r = run_inv("-f", str(LOCAL_WORLD), "merge", "--platforms=amd64,arm64", reports[0], f"--out-dir={tmp_path / 'o'}")
    assert r.returncode == 1 and "no report has linux/arm64" in r.stderr
    assert manifest(image, "merged")[0] == digest


def test_release_from_per_arch_jobs_publishes_the_jobs_digests(engine, tmp_path):
    """Per-arch build jobs at the tagged commit, then one publish job: `inv release --report=...` joins,
    smoke-tests and tags exactly the jobs' digests, with the same guards, tags and record."""
    from tests.test_release_real import set_version

    origin = make_project(tmp_path / "origin")
    set_version(origin, "9.1.0", tag="v9.1.0")
    image = unique_image("relmerge")
    reports = []
    for arch in ("amd64", "arm64"):
        clone = tmp_path / f"runner-{arch}" / "hello"
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
        r = job(clone, arch, image, tmp_path / f"out-{arch}")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        reports.append(f"--report={tmp_path / f'out-{arch}' / 'build-report.json'}")
    digests = {json.loads((tmp_path / f"out-{a}" / "build-report.json").read_text())["platforms"][0]["digest"]
               for a in ("amd64", "arm64")}
    r = run_inv("-f", str(LOCAL_WORLD), "release", f"--project={origin}", f"--image={image}",
                "--platforms=amd64,arm64", *reports, f"--out-dir={tmp_path / 'out-release'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "build started" not in r.stdout  # nothing was built for the image: the jobs' digests are published
    digest, index = manifest(image, "9.1.0")
    assert {m["digest"] for m in images_of(index)} == digests
    assert manifest(image, "latest")[0] == digest and manifest(image, "9.1")[0] == digest
    record = json.loads((tmp_path / "out-release" / "releases" / "9.1.0.json").read_text())
    assert record["index_digest"] == digest and {p["digest"] for p in record["platforms"]} == digests

    # reports from another version do not fit a release, and nothing moves
    set_version(origin, "9.2.0", tag="v9.2.0")
    r = run_inv("-f", str(LOCAL_WORLD), "release", f"--project={origin}", f"--image={image}",
                "--platforms=amd64,arm64", *reports, f"--out-dir={tmp_path / 'out-release-2'}")
    assert r.returncode == 1 and "do not fit this release" in r.stderr and "nothing was tagged" in r.stderr
    assert manifest(image, "latest")[0] == digest and manifest(image, "9.2.0") == ("", {})
