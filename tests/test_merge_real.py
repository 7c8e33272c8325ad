"""One CI job per architecture, then a merge job (Docker's "distribute the build across multiple runners"):
two clones of one commit, each building one arch with `--no-join`, joined by `inv merge`."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import LOCAL_WORLD, REGISTRY, git, make_project, manifest, run_inv, unique_image

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
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    merged = json.loads((tmp_path / "out-merge" / "build-report.json").read_text())
    assert merged["manifest"] == {"reference": f"{REGISTRY}/{image}:merged", "digest": digest}
    per_arch = {json.loads((tmp_path / f"out-{a}" / "build-report.json").read_text())["platforms"][0]["digest"]
                for a in ("amd64", "arm64")}
    assert {m["digest"] for m in index["manifests"]} == per_arch
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
