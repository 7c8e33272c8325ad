"""`inv verify IMAGE --key=cosign.pub [--record=out/releases/<version>.json]`: is this the image we released?

The task: its flags, then verify steps (tasks/steps/verify.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from invoke import Context

from .common import crossdock_task, say
from .core.references import ReferenceError, parse_reference
from .core.report import format_table
from .engine.cosign import Cosign
from .engine.docker import Engine
from .engine.registry import Client, Repo
from .engine.secrets import credentials, private_docker_config, require_pair
from .steps.verify import VerifyError, provenance_checks, record_problems, supply_chain_problems

VERIFY_HELP = {
    "image": "The image to verify: registry/repository:tag (or @sha256:...).",
    "key": "cosign public key (cosign.pub; `inv release --sign-key` writes it next to the release record).",
    "record": "A release record (out/releases/<version>.json): every platform's digest must be the recorded one.",
}


@crossdock_task(positional=["image"], help=VERIFY_HELP)
def verify(c: Context, image=None, key=None, record=None):
    """Verify a published image: cosign signatures, SBOM attestations, and (with --record) the digests."""
    if image in (None, "--help", "-h"):  # invoke hands `inv verify --help` to the positional IMAGE
        print("Usage: inv verify IMAGE --key=FILE [--record=FILE]\n\n  " + (verify.__doc__ or "").strip()
              + "\n\nOptions:\n" + "\n".join(f"  --{name:<8} {text}" for name, text in VERIFY_HELP.items()))
        if image is None:
            raise VerifyError("IMAGE is required: inv verify IMAGE --key=cosign.pub [--record=FILE]")
        return
    if image.startswith("-"):
        raise VerifyError(f"IMAGE comes first: inv verify IMAGE --key=cosign.pub [--record=FILE] (got {image!r})")
    if not key:
        raise VerifyError("--key is required: the cosign public key the image was signed for (e.g. cosign.pub)")
    try:
        ref = parse_reference(image)
    except ReferenceError as e:
        raise VerifyError(f"IMAGE {image!r} is not an image reference: {e}") from None
    public_key = Path(key)
    if not public_key.is_file():
        raise VerifyError(f"--key {key}: no such file (the public key, e.g. cosign.pub)")
    expected = None
    if record:
        try:
            expected = json.loads(Path(record).read_text())
        except (OSError, ValueError) as e:
            raise VerifyError(f"cannot read release record {record}: {e}") from None
    user, password = credentials()
    require_pair(user, password)
    cosign = Cosign(c)
    cosign.require()
    with private_docker_config():
        engine = Engine(c)
        if user:
            engine.log_in([Repo.parse(ref.repository).host], user, password)
        digest, entries = engine.index_digest(image)
        if not digest:
            raise VerifyError(f"cannot read {image} from its registry")
        if ref.digest and ref.digest != digest:
            raise VerifyError(f"{image} answers with {digest}")
        say(f"verifying {image} -> {digest} with {public_key} (offline: no transparency log)")
        problems = record_problems(expected, digest, entries) if expected is not None else []
        found, rows = supply_chain_problems(cosign, public_key, ref.repository, digest, entries)
        repo = Repo.parse(ref.repository)
        client = Client(user, password)
        checks = provenance_checks(client, repo, client.manifest(repo, digest))
    problems += found
    # Provenance is required where the record says the release carried it, or where any platform has it
    # (some attested and some not is not what a build does); an index without any is only reported.
    recorded = str(((expected or {}).get("build") or {}).get("provenance", "off")) != "off"
    required = recorded or any(not problem for _, problem in checks)
    problems += [problem for _, problem in checks if problem and required]
    rows += [(platform, "provenance", "provenance ok" if not problem else "FAILED" if required else "none")
             for platform, problem in checks]
    print(format_table(("what", "check", "result"), rows))
    if problems:
        raise VerifyError(f"{image} does not verify:\n" + "\n".join(f"  {p}" for p in problems))
    say(f"{image} verified: signed index and platforms, an SBOM per platform"
        + (", SLSA provenance per platform" if required else ", no provenance attestations")
        + (f", digests as recorded in {record}" if record else ""))
