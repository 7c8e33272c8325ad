"""`inv verify IMAGE --key=cosign.pub [--record=out/releases/<version>.json]`: is this the image we released?

Checks, for the index IMAGE resolves to: its cosign signature and every platform's, each platform's signed
CycloneDX SBOM attestation (about that platform's digest, listing crates and Debian packages), each
platform's SLSA provenance attestation (BuildKit's, in the index; required when the record says the release
carried it or when any platform has one), and with a release record that the index and every platform
digest are the recorded ones. Offline: the public key is
the whole trust (no transparency log). Exit 1 naming every check that failed. The release audit runs the
same signature and SBOM checks (``supply_chain_problems``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core.errors import CrossdockError
from ..core.references import IndexEntry, attestations, index_entries
from ..core.sbom import PREDICATE_TYPE, contents
from ..engine.cosign import Cosign
from ..engine.docker import last_line
from ..engine.registry import Client, Repo


class VerifyError(CrossdockError):
    pass


def _sbom_problem(cosign: Cosign, public_key: Path, repo: str, entry: IndexEntry) -> tuple[str, str]:
    """('', summary) when the platform has a verified CycloneDX attestation about its digest; (problem, '')."""
    ref = f"{repo}@{entry.digest}"
    r, statements = cosign.verify_sbom(public_key, ref)
    if not r.ok:
        return f"{entry.platform}: no SBOM attestation the key verifies on {ref} ({last_line(r.stderr)})", ""
    for s in statements:
        if s.predicate_type == PREDICATE_TYPE and entry.digest in s.subjects:
            crates, debs = contents(s.predicate)
            if not crates:
                return f"{entry.platform}: the SBOM on {ref} lists no crates", ""
            return "", f"{len(crates)} crate(s), {len(debs)} Debian package(s)"
    return f"{entry.platform}: no CycloneDX attestation about {entry.digest} on {ref}", ""


def supply_chain_problems(cosign: Cosign, public_key: Path, repo: str, index_digest: str,
                          entries: list[IndexEntry]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """(problems, table rows) for the index's signature, and each platform's signature and SBOM. ``entries``
    come from ``parse_index``/``index_entries``: attestation entries are already left out."""

    def signature(what: str, digest: str) -> tuple[str, str]:
        r = cosign.verify(public_key, f"{repo}@{digest}")
        return ("", "signature ok") if r.ok else (
            f"{what}: signature does not verify with {public_key} on {repo}@{digest} ({last_line(r.stderr)})", "")

    jobs = [("index", lambda: signature("index", index_digest))]
    for e in entries:
        jobs.append((e.platform, lambda e=e: signature(e.platform, e.digest)))
        jobs.append((e.platform, lambda e=e: _sbom_problem(cosign, public_key, repo, e)))
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="crossdock-verify") as pool:
        results = list(pool.map(lambda job: job[1](), jobs))
    problems = [p for p, _ in results if p]
    rows = [(what, kind, ok or "FAILED") for (what, _), (_, ok), kind in
            zip(jobs, results, ["signature"] + ["signature", "sbom"] * len(entries), strict=True)]
    return problems, rows


SLSA_PROVENANCE = "https://slsa.dev/provenance/"  # BuildKit's predicate types: .../v0.2, .../v1


def provenance_checks(client: Client, repo: Repo, index: dict) -> list[tuple[str, str]]:
    """``(platform, problem or '')`` for every platform of ``index``: it must keep an attestation manifest
    holding an SLSA provenance statement."""
    found = attestations(index)
    checks = []
    for entry in index_entries(index):
        digest = found.get(entry.digest)
        if not digest:
            checks.append((entry.platform, f"{entry.platform} has no attestation manifest"))
            continue
        layers = client.manifest(repo, digest).get("layers", [])
        types = [layer.get("annotations", {}).get("in-toto.io/predicate-type", "") for layer in layers]
        checks.append((entry.platform, "" if any(t.startswith(SLSA_PROVENANCE) for t in types) else
                       f"{entry.platform}'s attestation {digest} holds no SLSA provenance (has {types})"))
    return checks


def provenance_problems(client: Client, repo: Repo, index: dict) -> list[str]:
    """Every platform of ``index`` must keep an attestation manifest holding an SLSA provenance statement."""
    return [problem for _, problem in provenance_checks(client, repo, index) if problem]


def record_problems(record: dict, index_digest: str, entries: list[IndexEntry]) -> list[str]:
    """What differs from a release record: the index digest and every platform's digest."""
    problems = []
    if record.get("index_digest") != index_digest:
        problems.append(f"index is {index_digest}, the record says {record.get('index_digest')}")
    have = {e.platform: e.digest for e in entries}
    recorded = {p["platform"]: p["digest"] for p in record.get("platforms", [])}
    for platform in sorted(set(have) | set(recorded)):
        if have.get(platform) != recorded.get(platform):
            problems.append(f"{platform} is {have.get(platform) or 'missing'}, the record says "
                            f"{recorded.get(platform) or 'nothing'}")
    return problems


