"""What a per-platform push holds, and the attestations an index keeps. Pure."""

from __future__ import annotations

import json

import pytest

from tasks.core.references import attestations, pushed_platform

IMAGE = "sha256:" + "1" * 64
ATTESTATION = "sha256:" + "2" * 64
INDEX = json.dumps({"manifests": [
    {"digest": IMAGE, "platform": {"os": "linux", "architecture": "arm64"}},
    {"digest": ATTESTATION, "platform": {"os": "unknown", "architecture": "unknown"},
     "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": IMAGE}},
]})


def test_a_per_platform_index_holds_the_image_and_its_attestation():
    p = pushed_platform("sha256:" + "9" * 64, INDEX)
    assert (p.index, p.image, p.attestation) == ("sha256:" + "9" * 64, IMAGE, ATTESTATION)
    assert attestations(json.loads(INDEX)) == {IMAGE: ATTESTATION}


def test_a_plain_image_is_its_own_push_and_an_index_of_two_platforms_is_refused():
    p = pushed_platform(IMAGE, json.dumps({"config": {}, "layers": []}))
    assert (p.index, p.image, p.attestation) == (IMAGE, IMAGE, "")
    two = json.loads(INDEX)
    two["manifests"].append({"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": "amd64"}})
    with pytest.raises(ValueError, match="one platform image"):
        pushed_platform(IMAGE, json.dumps(two))
