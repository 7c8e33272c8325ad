"""The real tier of the supply chain (#13): one signed release of the example, checked from outside.

One release (amd64, arm64) with a password-protected cosign key made here: each platform's SBOM lists the
example's crate and the runtime's Debian packages, in out/ and attached as a signed attestation that
`cosign download attestation` fetches; `cosign verify --key`, run by the test itself, accepts the signature;
`inv verify` accepts the release and refuses a wrong key and a tag moved by hand to another index, as the
release audit does; the key's password appears in no output, log or file the release wrote.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import LOCAL_WORLD, REGISTRY, make_project, run_inv, unique_image
from tests.test_release_real import set_version, tag_digests

pytestmark = pytest.mark.real
KEY_PASSWORD = "Sign1ng-Key-Pass-crossdock"
PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class SignedRelease:
    image: str  # repository inside the registry
    out: Path
    record: dict
    public_key: Path
    other_key: Path  # a key pair that did not sign it
    result: subprocess.CompletedProcess[str]

    @property
    def repo(self) -> str:
        return f"{REGISTRY}/{self.image}"


def generate_key_pair(folder: Path, password: str) -> Path:
    folder.mkdir(parents=True)
    subprocess.run(["cosign", "generate-key-pair"], cwd=folder, env={**os.environ, "COSIGN_PASSWORD": password},
                   check=True, capture_output=True, timeout=60)
    return folder / "cosign.key"


@pytest.fixture(scope="module")
def signed_release(engine, tmp_path_factory) -> SignedRelease:
    if subprocess.run(["cosign", "version"], capture_output=True).returncode != 0:
        pytest.fail("cosign is not installed: scripts/provision-local.sh cosign")
    root = tmp_path_factory.mktemp("signed")
    key = generate_key_pair(root / "keys", KEY_PASSWORD)
    other = generate_key_pair(root / "other-keys", "another-password")
    project = make_project(root / "hello")
    set_version(project, "7.1.0", tag="v7.1.0")
    image = unique_image("signed")
    out = root / "out"
    r = run_inv("-f", str(LOCAL_WORLD), "release", f"--project={project}", f"--image={image}", f"--out-dir={out}",
                "--platforms=amd64,arm64", f"--sign-key={key}", env={"COSIGN_PASSWORD": KEY_PASSWORD})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    record = json.loads((out / "releases" / "7.1.0.json").read_text())
    return SignedRelease(image=image, out=out, record=record, public_key=out / "releases" / "7.1.0.pub",
                         other_key=other.with_suffix(".pub"), result=r)


def cosign(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cosign", *args], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"})


def test_each_platform_has_an_sbom_of_its_crates_and_debian_packages_in_out_and_attached(signed_release):
    rel = signed_release
    assert "nothing is uploaded to a transparency log (--tlog-upload=false)" in rel.result.stdout
    platforms = {p["platform"]: p["digest"] for p in rel.record["platforms"]}
    assert sorted(platforms) == sorted(PLATFORMS) and sorted(rel.record["sbom"]) == sorted(PLATFORMS)
    assert rel.record["signature"]["transparency_log"] is False
    for platform, digest in platforms.items():
        bom = json.loads(Path(rel.record["sbom"][platform]).read_text())
        names = {c["name"]: c for c in bom["components"]}
        assert names["hello-crossdock"]["version"] == "7.1.0" and names["hello-crossdock"]["type"] == "application"
        arch = platform.split("/")[1]
        assert names["libc6"]["purl"].endswith(f"?arch={arch}") and names["libc6"]["version"]
        assert bom["metadata"]["component"]["hashes"][0]["content"] == digest.removeprefix("sha256:")
        # The attestation is fetched from the registry by cosign alone, and carries the same document.
        d = cosign("download", "attestation", "--allow-http-registry", f"{rel.repo}@{digest}")
        assert d.returncode == 0, d.stderr
        statements = [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in d.stdout.splitlines()
                      if line.startswith("{")]
        sboms = [s for s in statements if s["predicateType"] == "https://cyclonedx.org/bom"]
        assert sboms and sboms[0]["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")
        assert sboms[0]["predicate"] == bom


def test_cosign_itself_accepts_the_signatures_with_the_public_key(signed_release):
    rel = signed_release
    targets = [f"{rel.repo}:7.1.0", f"{rel.repo}:latest"] + [f"{rel.repo}@{p['digest']}" for p in
                                                            rel.record["platforms"]]
    for ref in targets:
        v = cosign("verify", "--key", str(rel.public_key), "--insecure-ignore-tlog", "--allow-http-registry", ref)
        assert v.returncode == 0, (ref, v.stderr)
        claims = json.loads(v.stdout)
        assert claims[0]["critical"]["image"]["docker-manifest-digest"].startswith("sha256:")
    wrong = cosign("verify", "--key", str(rel.other_key), "--insecure-ignore-tlog", "--allow-http-registry",
                   f"{rel.repo}:7.1.0")
    assert wrong.returncode != 0


def test_the_key_password_is_in_no_output_log_or_file(signed_release):
    rel = signed_release
    assert KEY_PASSWORD not in rel.result.stdout + rel.result.stderr
    for f in rel.out.rglob("*"):
        if f.is_file():
            assert KEY_PASSWORD.encode() not in f.read_bytes(), f


def test_inv_verify_accepts_the_release_and_refuses_a_wrong_key_and_a_moved_tag(signed_release, tmp_path):
    from invoke import Context

    from tasks.core.tags import TagPlan
    from tasks.engine.cosign import Cosign
    from tasks.engine.registry import Client
    from tasks.release import audit

    rel = signed_release
    record = rel.out / "releases" / "7.1.0.json"
    ok = run_inv("verify", f"{rel.repo}:7.1.0", f"--key={rel.public_key}", f"--record={record}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verified" in ok.stdout and ok.stdout.count("signature ok") == 3
    if rel.record["build"]["provenance"] != "off":  # the engine kept BuildKit's attestations (Docker 26.1 here)
        assert ok.stdout.count("provenance ok") == len(PLATFORMS) and "SLSA provenance per platform" in ok.stdout

    wrong = run_inv("verify", f"{rel.repo}:7.1.0", f"--key={rel.other_key}")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "index: signature does not verify" in wrong.stderr

    index = rel.record["index_digest"]
    plans = {rel.repo: TagPlan(tags=("7.1.0", "latest"), held_back=())}
    cosign_ = Cosign(Context())
    assert audit(Client(), [rel.repo], plans, index, list(PLATFORMS), cosign=cosign_, public_key=rel.public_key) == []
    bad = audit(Client(), [rel.repo], plans, index, list(PLATFORMS), cosign=cosign_, public_key=rel.other_key)
    assert bad and all("signature does not verify" in p or "no SBOM attestation" in p for p in bad), bad

    # `latest` moved by hand to another index (the base image): verify and the audit name it.
    subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", f"{rel.repo}:latest",
                    f"{REGISTRY}/crossdock/debian:trixie"], check=True, capture_output=True)
    moved = tag_digests(rel.image, ["latest"])["latest"]
    assert moved != index
    r = run_inv("verify", f"{rel.repo}:latest", f"--key={rel.public_key}", f"--record={record}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"index is {moved}, the record says {index}" in r.stderr
    assert "linux/arm/v7 is " in r.stderr  # the base image has a platform the release does not
    assert "index: signature does not verify" in r.stderr
    problems = audit(Client(), [rel.repo], plans, index, list(PLATFORMS), cosign=cosign_, public_key=rel.public_key)
    assert problems == [f"{rel.repo}:latest resolves to {moved}, not {index}"]


def test_promotion_of_a_signed_release_verifies_it_first(signed_release, tmp_path):
    rel = signed_release
    record = rel.out / "releases" / "7.1.0.json"
    tags = ["7.1.0", "7.1", "7", "latest"]
    forged = tmp_path / "releases"
    forged.mkdir()
    shutil.copy(record, forged / "7.1.0.json")
    shutil.copy(rel.other_key, forged / "7.1.0.pub")  # beside the record: a key that did not sign it
    before = tag_digests(rel.image, tags)
    r = run_inv("release", f"--promote-from={forged / '7.1.0.json'}", f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "does not verify with its key, nothing was promoted" in r.stderr and "signature does not verify" in r.stderr
    assert tag_digests(rel.image, tags) == before
    (forged / "7.1.0.pub").unlink()
    r = run_inv("release", f"--promote-from={forged / '7.1.0.json'}", f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 1 and "is not beside it" in r.stderr and tag_digests(rel.image, tags) == before

    ok = run_inv("release", f"--promote-from={record}", f"--out-dir={tmp_path / 'out'}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"signatures and SBOM attestations verify with {record.with_suffix('.pub')}" in ok.stdout
    assert tag_digests(rel.image, tags) == {tag: rel.record["index_digest"] for tag in tags}
