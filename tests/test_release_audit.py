"""The release audit's provenance check, against a registry fake that holds manifests. Pure."""

from __future__ import annotations

from tasks.engine.registry import Repo
from tasks.release import attestation_digests
from tasks.steps.verify import provenance_problems

AMD, ARM = "sha256:" + "a" * 64, "sha256:" + "b" * 64
ATT_AMD, ATT_ARM = "sha256:" + "c" * 64, "sha256:" + "d" * 64


class Registry:
    def __init__(self, manifests):
        self.manifests = manifests

    def manifest(self, repo, reference):
        return self.manifests[reference]


def statement(predicate: str) -> dict:
    return {"layers": [{"mediaType": "application/vnd.in-toto+json",
                        "annotations": {"in-toto.io/predicate-type": predicate}}]}


def index(*attested: tuple[str, str]) -> dict:
    entries = [{"digest": AMD, "platform": {"os": "linux", "architecture": "amd64"}},
               {"digest": ARM, "platform": {"os": "linux", "architecture": "arm64"}}]
    for image, digest in attested:
        entries.append({"digest": digest, "platform": {"os": "unknown", "architecture": "unknown"},
                        "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                        "vnd.docker.reference.digest": image}})
    return {"manifests": entries}


def test_every_platform_needs_an_attestation_with_slsa_provenance():
    registry = Registry({ATT_AMD: statement("https://slsa.dev/provenance/v0.2"),
                         ATT_ARM: statement("https://spdx.dev/Document")})
    repo = Repo.parse("127.0.0.1:5000/app")
    assert provenance_problems(registry, repo, index((AMD, ATT_AMD))) == ["linux/arm64 has no attestation manifest"]
    problems = provenance_problems(registry, repo, index((AMD, ATT_AMD), (ARM, ATT_ARM)))
    assert len(problems) == 1 and problems[0].startswith(f"linux/arm64's attestation {ATT_ARM} holds no SLSA")
    registry.manifests[ATT_ARM] = statement("https://slsa.dev/provenance/v1")
    assert provenance_problems(registry, repo, index((AMD, ATT_AMD), (ARM, ATT_ARM))) == []
    assert attestation_digests(index((AMD, ATT_AMD))) == {"linux/amd64": ATT_AMD, "linux/arm64": ""}
