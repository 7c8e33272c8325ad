"""The ready-made GitHub Actions workflow (examples/github-actions/crossdock.yml): it validates against the
workflow schema, lints clean with zizmor, and its jobs' commands run here in order, each job in a runner
directory of its own (fresh clones; artifacts passed between them as the upload/download steps do)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import LOCAL_WORLD, SUITE, images_of, make_project, manifest

WORKFLOW = SUITE / "examples" / "github-actions" / "crossdock.yml"
BIN = Path(sys.executable).parent


def load() -> dict:
    return YAML(typ="safe").load(WORKFLOW.read_text())


def test_the_workflow_validates_against_the_github_workflow_schema():
    r = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_workflow_lints_clean_with_zizmor():
    r = subprocess.run([str(BIN / "zizmor"), "--offline", "--persona=pedantic", str(WORKFLOW)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "No findings to report" in r.stdout + r.stderr, r.stdout + r.stderr


def test_the_workflow_builds_per_arch_then_merges_and_releases_only_tags():
    wf = load()
    jobs = wf["jobs"]
    assert jobs["build"]["strategy"]["matrix"]["platform"] == ["amd64", "arm64", "arm/v7"]
    assert jobs["merge"]["needs"] == "build" and jobs["release"]["needs"] == "merge"
    assert jobs["release"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert wf["permissions"] == {}  # each job asks for what it needs
    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]  # pinned


def expand(text: str, context: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        key = m.group(1).strip()
        assert key in context, f"the local run does not know ${{{{ {key} }}}}"
        return context[key]
    return re.sub(r"\$\{\{([^}]*)\}\}", value, text)


def run_job(job: dict, runner: Path, env: dict[str, str], context: dict[str, str], artifacts: Path) -> None:
    for step in job["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("actions/upload-artifact@"):
            dest = artifacts / expand(step["with"]["name"], context)
            source = runner / expand(step["with"]["path"], context)
            if source.is_dir():
                shutil.copytree(source, dest)
            else:
                dest.mkdir(parents=True)
                shutil.copy(source, dest)
        elif uses.startswith("actions/download-artifact@"):
            pattern = step["with"]["pattern"].replace("*", "")
            for folder in sorted(artifacts.iterdir()):
                if folder.name.startswith(pattern):
                    shutil.copytree(folder, runner / step["with"]["path"] / folder.name)
        elif "run" in step and step.get("name") != "Install crossdock":
            step_env = {**env, **{k: expand(str(v), context) for k, v in (step.get("env") or {}).items()}}
            r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", expand(step["run"], context)],
                               cwd=runner, env=step_env, capture_output=True, text=True, timeout=1500)
            assert r.returncode == 0, f"{step['name']}: {r.stdout[-3000:]}{r.stderr}"


@pytest.mark.real
def test_the_jobs_run_in_order_on_separate_runners(engine, tmp_path):
    """A version tag pushed: build (one runner per arch), merge and release jobs, in order. Checkout, setup
    and login steps are this machine's (a fresh clone per runner, the local engine and registry);
    `pip install` is the suite's venv; the runs are the workflow's own commands."""
    from tests.test_release_real import set_version

    wf = load()
    origin = make_project(tmp_path / "origin")
    set_version(origin, "3.4.5", tag="v3.4.5")
    repository = f"Test/WF-{uuid.uuid4().hex[:6]}"  # mixed case: the workflow lowercases it
    config = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
              for line in LOCAL_WORLD.read_text().splitlines() if line.startswith("  ")}
    base_env = {**os.environ, **{k: str(v) for k, v in wf["env"].items()},
                "CROSSDOCK_REGISTRY": config["registry"], "CROSSDOCK_BUILDER_IMAGE": config["builder_image"],
                "CROSSDOCK_RUNTIME_IMAGE": config["runtime_image"]}
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()

    def runner(name: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["git", "clone", "-q", str(origin), str(path / "project")], check=True)
        (path / "crossdock").symlink_to(SUITE)
        (path / ".venv").symlink_to(Path(sys.executable).parent.parent)
        return path

    for index, platform in enumerate(wf["jobs"]["build"]["strategy"]["matrix"]["platform"]):
        context = {"matrix.platform": platform, "github.repository": repository, "strategy.job-index": str(index)}
        run_job(wf["jobs"]["build"], runner(f"runner-build-{index}"), base_env, context, artifacts)
    merge_runner = runner("runner-merge")
    run_job(wf["jobs"]["merge"], merge_runner, base_env, {"github.repository": repository}, artifacts)
    report = json.loads((merge_runner / "out" / "build-report.json").read_text())
    assert report["manifest"]["reference"] == f"{config['registry']}/{repository.lower()}:edge"
    digest, index = manifest(repository.lower(), "edge")
    assert digest == report["manifest"]["digest"]
    assert sorted("/".join(filter(None, (m["platform"]["architecture"], m["platform"].get("variant"))))
                  for m in images_of(index)) == ["amd64", "arm/v7", "arm64"]
    smoke = json.loads((merge_runner / "out" / "smoke-report.json").read_text())
    assert smoke["ok"] and len(smoke["platforms"]) == 3
    release_runner = runner("runner-release")
    run_job(wf["jobs"]["release"], release_runner, base_env, {"github.repository": repository}, artifacts)
    released, released_index = manifest(repository.lower(), "3.4.5")
    assert {m["digest"] for m in released_index["manifests"]} == {m["digest"] for m in index["manifests"]}
    assert manifest(repository.lower(), "latest")[0] == released
    assert (artifacts / "release-record" / "3.4.5.json").is_file()
