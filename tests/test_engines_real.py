"""Current engines, for real: reproducible images and `inv rebuild` on Docker 26.1 (containerd store), and the
compatibility job's build + smoke + release on whatever engine runs (.ci/run runs the `compat` ones again on
Docker 20.10 after the whole suite ran on 26.1)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import (
    LOCAL_WORLD,
    make_project,
    manifest,
    rebuild_record,
    registry_get,
    release_amd64_arm64,
    run_inv,
    unique_image,
)

pytestmark = pytest.mark.real
ID = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]


def engine_version() -> str:
    return subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                          text=True).stdout.strip()


def build(project: Path, image: str, tag: str, out: Path, *args: str) -> dict:
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                f"--image={image}", f"--tag={tag}", f"--out-dir={out}", *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return json.loads((out / "build-report.json").read_text())


def layers(image: str, digest: str) -> list[tarfile.TarFile]:
    _, m = manifest(image, digest)
    found = []
    for layer in m["layers"]:
        status, _, body = registry_get(f"/v2/{image}/blobs/{layer['digest']}")
        assert status == 200
        found.append(tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))))
    return found


def file_in_image(image: str, digest: str, path: str) -> bytes:
    content = b""
    for tar in layers(image, digest):  # the last layer holding the path wins, as in the image
        try:
            member = tar.extractfile(path)
        except KeyError:
            continue
        if member is not None:
            content = member.read()
    assert content, f"{path} not in {image}@{digest}"
    return content


def test_two_clean_builds_of_one_commit_give_the_same_digests(engine, tmp_path):
    """Same commit, two checkouts (so two cargo target dirs), the second without any layer cache, minutes
    apart: the same per-arch image digests and the same index digest. Provenance is off here because a
    provenance statement records its own build time by design (see test_rebuild_from_the_release_record)."""
    assert engine_version().startswith("26."), "needs Docker 26.1 (CROSSDOCK_ENGINE=26.1, the default)"
    first = make_project(tmp_path / "a" / "hello")
    second = tmp_path / "b" / "hello"
    shutil.copytree(first, second, symlinks=True)  # the same commit, no remote (a clone's would be a label)
    image = unique_image("repro")
    a = build(first, image, "a", tmp_path / "out-a", "--provenance=off")
    b = build(second, image, "b", tmp_path / "out-b", "--provenance=off", "--no-cache")
    assert a["settings"] == b["settings"]  # every build argument but the machine's (the cargo target dir)
    assert [p["digest"] for p in a["platforms"]] == [p["digest"] for p in b["platforms"]]
    assert a["manifest"]["digest"] == b["manifest"]["digest"]
    # No timestamp leaks: every file crossdock adds on top of the runtime base is dated the commit's time.
    epoch = int(a["settings"]["SOURCE_DATE_EPOCH"])
    _, base = manifest("crossdock/debian", "trixie")
    base_layers = len(manifest("crossdock/debian", base["manifests"][0]["digest"])[1]["layers"])
    times = {m.name: m.mtime for tar in layers(image, a["platforms"][1]["digest"])[base_layers:]
             for m in tar.getmembers()}  # (WORKDIR adds an empty layer)
    assert "usr/local/bin/hello-crossdock" in times and "etc/passwd" in times, sorted(times)
    assert all(t == epoch for t in times.values()), {n: t for n, t in times.items() if t != epoch}


def test_rebuild_from_the_release_record(engine, tmp_path):
    """A release on 26.1 (provenance on), then `inv rebuild` of its record from clean caches: every
    platform's image is the released one; a record naming another digest is reported as a mismatch."""
    assert engine_version().startswith("26."), "needs Docker 26.1 (CROSSDOCK_ENGINE=26.1, the default)"
    project = make_project(tmp_path / "hello", tag="v0.1.0")
    path, record = release_amd64_arm64(project, image=unique_image("rebuild"), out=tmp_path / "out",
                                       version="0.1.0")
    assert all(p["attestation"] for p in record["platforms"])
    report = rebuild_record(path, project=project, out=tmp_path / "rebuilt")
    assert [(p["platform"], p["result"]) for p in report["platforms"]] == [("linux/amd64", "match"),
                                                                          ("linux/arm64", "match")]
    assert [p["rebuilt"] for p in report["platforms"]] == [p["digest"] for p in record["platforms"]]
    assert "--no-cache" in (tmp_path / "rebuilt" / "rebuild" / "amd64.log").read_text().splitlines()[0]
    # The check can fail: a record whose amd64 digest is another one is not reproduced (exit 1, kept archive).
    record["platforms"] = [dict(record["platforms"][0], digest="sha256:" + "0" * 64)]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(record))
    r = run_inv("-f", str(LOCAL_WORLD), "rebuild", f"--record={wrong}", f"--project={project}",
                f"--out-dir={tmp_path / 'wrong'}")
    assert r.returncode == 1 and "not reproduced: linux/amd64 MISMATCH" in r.stderr, r.stdout + r.stderr
    assert (tmp_path / "wrong" / "rebuild" / "amd64.oci.tar").is_file()


@pytest.mark.compat
def test_compat_build_smoke_release_and_bit_identical_binaries(engine, tmp_path):
    """The compatibility job: the example's build, smoke test and release on the engine that runs (20.10 in
    .ci/run's second phase, where attestations and timestamp rewriting are off with a note), and two builds
    of one commit whose binaries are bit-identical."""
    wanted = os.environ.get("CROSSDOCK_ENGINE", "26.1")
    assert engine_version().startswith(wanted + "."), f"expected Docker {wanted}, found {engine_version()}"
    project = make_project(tmp_path / "a" / "hello", tag="v0.1.0")
    again = tmp_path / "b" / "hello"
    shutil.copytree(project, again, symlinks=True)
    image = unique_image("compat")
    a = build(project, image, "a", tmp_path / "out-a")
    smoke = run_inv("-f", str(LOCAL_WORLD), "smoke", f"--out-dir={tmp_path / 'out-a'}", cwd=project)
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr
    b = build(again, image, "b", tmp_path / "out-b", "--no-cache")
    for pa, pb in zip(a["platforms"], b["platforms"], strict=True):
        bins = [file_in_image(image, p["digest"], "usr/local/bin/hello-crossdock") for p in (pa, pb)]
        assert hashlib.sha256(bins[0]).hexdigest() == hashlib.sha256(bins[1]).hexdigest(), pa["platform"]
    if wanted == "20.10":
        assert all(not p["attestation"] for p in a["platforms"]) and a["provenance"] == "off"
    r = run_inv("-f", str(LOCAL_WORLD), "release", "--platforms=amd64,arm64", f"--project={project}",
                f"--image={image}", f"--out-dir={tmp_path / 'rel'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    record = json.loads((tmp_path / "rel" / "releases" / "0.1.0.json").read_text())
    assert record["engine"]["docker"].startswith(wanted + ".")
    _, index = manifest(image, "0.1.0")
    assert sorted(m["platform"]["architecture"] for m in index["manifests"] if m["platform"]["os"] == "linux") == [
        "amd64", "arm64"]


def test_the_engine_socket_and_the_cli_report_the_same_engine(engine):
    """The probe reads /info from the engine's socket; the CLI's `docker info` is the fallback."""
    from invoke import Context

    from tasks.engine.docker import Engine

    through_socket = Engine(Context())
    assert through_socket.api.socket()
    through_cli = Engine(Context())
    through_cli.api.socket = lambda: ""  # as for a remote engine
    assert through_socket.api.info()["ServerVersion"]
    assert through_cli.api.info() == {}
    assert through_socket.current_facts() == through_cli.current_facts()


def test_the_default_builder_shortcut_agrees_with_buildx_itself(engine, monkeypatch):
    """The probe skips `docker buildx inspect` when buildx would use the engine's own builder and its plugin is
    installed: both answers checked against the CLI's own, and a builder named elsewhere (BUILDX_BUILDER, or
    `docker buildx use` in buildx's state) makes it ask buildx, which names the problem."""
    from invoke import Context

    from tasks.core.buildx import parse_driver
    from tasks.engine.docker import Engine, EngineError, _buildx_plugin_present, _default_builder_is_current

    inspect = subprocess.run(["docker", "buildx", "inspect"], capture_output=True, text=True, check=True).stdout
    name = next(line.split(":", 1)[1].strip() for line in inspect.splitlines() if line.startswith("Name:"))
    assert _default_builder_is_current() == (name == "default" and parse_driver(inspect) == "docker")
    assert _buildx_plugin_present() == (subprocess.run(["docker", "buildx", "version"], capture_output=True)
                                        .returncode == 0)
    assert Engine(Context()).info().driver == parse_driver(inspect)
    monkeypatch.setenv("BUILDX_BUILDER", "crossdock-no-such-builder")
    assert not _default_builder_is_current()
    cli = subprocess.run(["docker", "buildx", "inspect"], capture_output=True, text=True)
    assert cli.returncode != 0  # buildx itself does not fall back to the default builder
    with pytest.raises(EngineError, match="not usable"):
        Engine(Context()).info()
