"""`inv rebuild`: records it refuses before any work, and reading an OCI archive's image digest. No engine."""

from __future__ import annotations

import io
import json
import tarfile

from tasks.rebuild import oci_image_digest
from tests.conftest import run_inv

IMAGE = "sha256:" + "1" * 64
INDEX = "sha256:" + "2" * 64


def refused(tmp_path, *args: str) -> str:
    r = run_inv("rebuild", *args, f"--out-dir={tmp_path / 'out'}")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "out").exists()  # nothing started
    return r.stderr


def test_bad_records_are_refused_naming_the_fix(tmp_path):
    assert "--record is required" in refused(tmp_path)
    assert "cannot read release record" in refused(tmp_path, f"--record={tmp_path / 'none.json'}")
    reused = tmp_path / "reused.json"
    reused.write_text(json.dumps({"commit": "a" * 40, "build": None,
                                  "platforms": [{"platform": "linux/amd64", "digest": IMAGE}]}))
    assert "reused an index" in refused(tmp_path, f"--record={reused}")
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"commit": "a" * 40, "build": {"args": {}},
                               "platforms": [{"platform": "linux/vax", "digest": IMAGE}]}))
    assert "vax" in refused(tmp_path, f"--record={odd}")


def archive(tmp_path, blobs: dict[str, dict], top: str):
    path = tmp_path / "a.oci.tar"
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: dict) -> None:
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        add("index.json", {"manifests": [{"digest": top}]})
        for digest, data in blobs.items():
            add(f"blobs/sha256/{digest.split(':')[1]}", data)
    return path


def test_the_image_digest_of_an_oci_archive_with_or_without_an_attestation(tmp_path):
    with_attestation = {INDEX: {"manifests": [
        {"digest": IMAGE, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + "3" * 64, "platform": {"os": "unknown", "architecture": "unknown"}}]}}
    assert oci_image_digest(archive(tmp_path, with_attestation, INDEX), "linux/arm64") == IMAGE
    assert oci_image_digest(archive(tmp_path, {IMAGE: {"layers": []}}, IMAGE), "linux/arm64") == IMAGE
