"""What `inv release` adds for the supply chain: an SBOM per platform, and offline cosign signatures.

SBOMs: after the image build, one more ``docker buildx build --target sbom --output type=local`` per platform
(the same Dockerfile and build arguments, so every stage is a cache hit and the pushed image is untouched)
exports the inputs (cargo metadata for the target, Cargo.lock, the runtime's dpkg status), and
tasks.core.sbom assembles ``out/sbom/<arch>.cdx.json`` (CycloneDX). Signing (``--sign-key``): cosign signs
the index and every platform manifest (``--recursive``) and attaches each platform's SBOM as a signed
``cyclonedx`` attestation, with no transparency-log upload.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..common import say
from ..core.build_plan import build_args
from ..core.buildx import joint_compile_args
from ..core.errors import CrossdockError
from ..core.platforms import lookup
from ..core.project import Target
from ..core.references import IndexEntry
from ..core.report import human_seconds
from ..core.sbom import SbomError, assemble, contents, sbom_build_argv
from ..core.settings import Settings
from ..engine.cosign import Cosign
from ..engine.docker import Engine, last_line
from ..engine.vcs import VcsInfo
from .build import plan_spec, stage_build_files
from .private import probe_private_sources

OFFLINE_NOTE = ("offline signing: nothing is uploaded to a transparency log (--tlog-upload=false), so there is no "
                "public record or timestamp of this signature: verifiers need the public key from you")


class SupplyChainError(CrossdockError):
    pass


@dataclass(frozen=True)
class Signing:
    """A release's signing key: cosign and the key reference (a file, absolute, or a KMS URI)."""

    cosign: Cosign
    key: str


def key_reference(raw: str) -> str:
    """A key file as an absolute path (cosign runs elsewhere than the user typed it); a KMS URI unchanged."""
    if "://" in raw:
        return raw
    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        raise SupplyChainError(f"signing key {raw}: no such file (--sign-key or CROSSDOCK_SIGN_KEY: a cosign private "
                               f"key, e.g. from `cosign generate-key-pair`)")
    return str(path)


def prepare_signing(cosign: Cosign, raw_key: str) -> Signing:
    """Before any build: cosign is there and the password opens the key (its public key can be derived)."""
    cosign.require()
    key = key_reference(raw_key)
    folder = Path(tempfile.mkdtemp(prefix="crossdock-pub-"))
    try:
        cosign.public_key(key, folder / "cosign.pub")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Signing(cosign=cosign, key=key)


def make_sboms(engine: Engine, settings: Settings, target: Target, vcs: VcsInfo | None, *, version: str,
               repository: str, entries: list[IndexEntry], joint_targets: str = "") -> dict[str, Path]:
    """One CycloneDX document per platform of the index, in ``<out>/sbom/<arch>.cdx.json``: platform -> path
    (``joint_targets``: the index was built here by a joint compile of those platforms, whose steps the SBOM
    builds then find in the cache)."""
    t0 = time.monotonic()
    folder = settings.out_dir / "sbom"
    folder.mkdir(parents=True, exist_ok=True)
    # a reused release built elsewhere: the same files and dependency recipe, staged again
    spec = plan_spec(settings, target)
    stage_build_files(settings.project, package=target.cargo_package, spec=spec, network=settings.build_network)
    # The image build's arguments, so every stage is a cache hit (the compile steps' secrets are not needed again).
    git_tools = probe_private_sources(settings.project).git_tools
    args = build_args(settings, target, vcs, spec=spec, version=version, git_tools=git_tools)

    def one(entry: IndexEntry) -> tuple[str, Path | str]:
        platform = lookup(entry.platform)
        raw = folder / platform.suffix
        shutil.rmtree(raw, ignore_errors=True)
        argv = sbom_build_argv(builder=settings.builder, platform=entry.platform, project=settings.project,
                               build_args=args, dest=raw, network=settings.build_network,
                               compile_args=joint_compile_args(joint_targets))
        log = folder / f"{platform.suffix}.log"
        with open(log, "w") as out:
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            r = engine.build(argv, out)
        if not r.ok:
            return entry.platform, f"the SBOM build failed (log: {log}): {last_line(log.read_text(errors='replace'))}"
        triple = (raw / "target.txt").read_text().split("RUST_TARGET=", 1)[-1].split()[0] \
            if (raw / "target.txt").is_file() else platform.rust_triple
        try:
            bom = assemble(raw, repository=repository, digest=entry.digest, platform=entry.platform,
                           rust_target=triple, bin=target.bin, package=target.cargo_package,
                           timestamp=vcs.created if vcs else "", image_version=version)
        except SbomError as e:
            return entry.platform, str(e)
        path = folder / f"{platform.suffix}.cdx.json"
        path.write_text(json.dumps(bom, indent=2) + "\n")
        crates, debs = contents(bom)
        say(f"{entry.platform}: SBOM {path} ({len(crates)} crate(s) in the binary, {len(debs)} Debian package(s))")
        return entry.platform, path

    with ThreadPoolExecutor(max_workers=max(1, len(entries)), thread_name_prefix="crossdock-sbom") as pool:
        results = list(pool.map(one, entries))
    problems = [f"{p}: {r}" for p, r in results if isinstance(r, str)]
    if problems:
        raise SupplyChainError("SBOM: " + "; ".join(problems) + " (nothing was tagged)")
    say(f"SBOMs for {len(entries)} platform(s) in {human_seconds(time.monotonic() - t0)}")
    return {p: r for p, r in results if isinstance(r, Path)}


def sign_and_attest(signing: Signing, repo: str, index_digest: str, entries: list[IndexEntry],
                    sboms: dict[str, Path]) -> None:
    """Sign ``repo@index`` and every platform manifest, attach each platform's SBOM; offline."""
    t0 = time.monotonic()
    cosign = signing.cosign
    r = cosign.sign(signing.key, f"{repo}@{index_digest}")
    if not r.ok:
        raise SupplyChainError(f"cosign could not sign {repo}@{index_digest}: {last_line(r.stderr or r.stdout)}")

    def attest(entry: IndexEntry) -> str:
        if entry.platform not in sboms:
            return f"{entry.platform}: no SBOM to attach"
        a = cosign.attest_sbom(signing.key, f"{repo}@{entry.digest}", sboms[entry.platform])
        return "" if a.ok else f"{entry.platform}: {last_line(a.stderr or a.stdout)}"

    with ThreadPoolExecutor(max_workers=max(1, len(entries)), thread_name_prefix="crossdock-attest") as pool:
        problems = [p for p in pool.map(attest, entries) if p]
    if problems:
        raise SupplyChainError(f"cosign could not attach the SBOMs to {repo}: " + "; ".join(problems))
    if not cosign.dry:
        say(f"signed {repo}@{index_digest} and its {len(entries)} platform(s), SBOMs attached as cyclonedx "
            f"attestations ({human_seconds(time.monotonic() - t0)})")
