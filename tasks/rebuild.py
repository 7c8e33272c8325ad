"""`inv rebuild RECORD`: build a released version again from its record and say, per platform, whether
the image is the same, byte for byte (its manifest digest).

The record (``out/releases/<version>.json``, written by `inv release`) pins what the images were built
from: the commit, every build argument (base images by digest), timestamp rewriting, and the engine. The
rebuild checks that commit out beside the project (the project's own work tree is untouched), builds
every recorded platform from clean caches (no layer cache, an empty cargo target dir) into OCI archives,
publishes nothing, and compares. Attestations are not compared: a provenance statement records when and
by which invocation it was made, so it differs by design; the images it is about must not.
"""

from __future__ import annotations

import json
import shlex
import tarfile
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from invoke import Context

from .common import say, settings_task
from .core import buildx
from .core.capabilities import REWRITE, available
from .core.errors import CrossdockError
from .core.image import ImageSpec
from .core.platforms import PlatformError, lookup
from .core.references import index_entries
from .core.report import MACHINE_ARGS, format_table, human_seconds
from .core.settings import SUITE_ROOT, Settings
from .engine.docker import Engine
from .engine.vcs import checkout, probe_vcs
from .steps.build import stage_build_files


class RebuildError(CrossdockError):
    """The record cannot be rebuilt here (unreadable, from a reused index, or an engine that cannot)."""


def read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
        build, platforms = record["build"], record["platforms"]
        commit = record["commit"]
        if not (isinstance(platforms, list) and platforms and isinstance(commit, str) and commit):
            raise ValueError("platforms or commit are missing")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RebuildError(f"cannot read release record {path}: {e} (`inv rebuild` takes a file written by "
                           f"`inv release`, out/releases/<version>.json)") from None
    if not build:
        raise RebuildError(f"{path} records a release that reused an index built by an earlier run: rebuild from "
                           f"that run's record")
    return record


def oci_image_digest(archive: Path, platform: str) -> str:
    """The digest of ``platform``'s image manifest in a buildx OCI archive (whose index may hold an index of
    the image and its attestation)."""
    with tarfile.open(archive) as tar:
        def blob(digest: str) -> dict:
            member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            if member is None:
                raise ValueError(f"{archive} lacks blob {digest}")
            return json.loads(member.read())

        top = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        digest = top["manifests"][0]["digest"]
        data = blob(digest)
        if "manifests" not in data:
            return digest
        entries = [e for e in index_entries(data) if e.platform == platform] or index_entries(data)
        if len(entries) != 1:
            raise ValueError(f"{archive} holds {[e.platform for e in entries]}, expected {platform}")
        return entries[0].digest


def compare_table(rows: list[dict]) -> str:
    return format_table(("platform", "recorded", "rebuilt", "result", "time"),
                        [(r["platform"], r["recorded"][:19] + "…", (r["rebuilt"][:19] + "…") if r["rebuilt"] else "-",
                          r["result"], human_seconds(r["seconds"])) for r in rows])


@settings_task(
    "project", "compile_slots", "compile_tokens", "out_dir",
    extend={"project": "Any directory of the git repository holding the recorded commit (default: the bundled "
                       "example's)."},
    flags={"record": (None, "The release record to rebuild (out/releases/<version>.json of `inv release`).")},
)
def rebuild(c: Context, settings: Settings, *, record: str | None = None) -> None:
    """Rebuild a release from its record, from clean caches, and report per platform whether the image
    digests match (exit 1 on any mismatch)."""
    t0 = time.monotonic()
    if not record:
        raise RebuildError("--record is required: the release record to rebuild (out/releases/<version>.json)")
    rec = read_record(Path(record))
    build = rec["build"]
    try:
        platforms = tuple(lookup(p["platform"]) for p in rec["platforms"])
    except PlatformError as e:
        raise RebuildError(f"{record}: {e}") from None
    engine = Engine(c, builder=settings.builder)
    facts = engine.current_facts()
    then = rec.get("engine") or {}
    say(f"rebuilding {rec.get('version', '?')} from commit {rec['commit'][:12]} for "
        f"{', '.join(p.docker for p in platforms)}")
    say(f"recorded engine: Docker {then.get('docker', '?')}, BuildKit {then.get('buildkit', '?')}, "
        f"{then.get('driver', '?')} driver, {then.get('image_store', '?')} store; this one: Docker "
        f"{facts.engine_version}, BuildKit {facts.buildkit_version}, {facts.driver} driver, {facts.image_store} store")
    if then and (then.get("docker"), then.get("buildkit")) != (facts.engine_version, facts.buildkit_version):
        say("warning: another engine than the recorded one: a mismatch may come from the engine, not the source")
    suite = probe_vcs(SUITE_ROOT)
    if rec.get("crossdock") and suite and rec["crossdock"].removesuffix("-dirty") != suite.revision:
        say(f"warning: crossdock is at {suite.revision[:12]}, the release was built by {rec['crossdock'][:12]}: "
            f"its Dockerfile may differ")
    rewrite = bool(build.get("reproducible"))
    can = available(engine.capabilities(), REWRITE)
    if rewrite and not can.available:
        raise RebuildError(f"the release was built with rewritten timestamps, which this builder cannot do "
                           f"({can.detail}): {can.fix}")
    out = settings.out_dir / "rebuild"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crossdock-rebuild-") as tmp:
        try:
            checkout(settings.project, rec["commit"], Path(tmp) / "src")
        except ValueError as e:
            raise RebuildError(str(e)) from None
        project = Path(tmp) / "src" / (build.get("project") or ".")
        args = {k: str(v) for k, v in build["args"].items() if k not in MACHINE_ARGS}
        if not build.get("image"):
            raise RebuildError(f"{record} has no image spec (a release made before crossdock recorded one): rebuild "
                               f"it with the crossdock revision that made it ({rec.get('crossdock') or 'unknown'})")
        spec = ImageSpec.from_json(build["image"])  # what went into the image, as recorded
        stage_build_files(project, package=args.get("PACKAGE", ""), spec=spec)  # and the recorded recipe
        # An empty cargo target dir of its own (a cache mount nobody used) and no layer cache: a clean build.
        args.update(CACHE_KEY=f"rebuild-{uuid.uuid4().hex[:12]}", COMPILE_SLOTS=str(settings.compile_slots),
                    COMPILE_TOKENS=settings.compile_tokens)
        request = buildx.BuildRequest(
            project=project, platforms=platforms, repository="rebuild", tag=str(rec.get("version", "rebuild")),
            output="oci", driver=facts.driver, builder=settings.builder, build_args=args, run_dir=out, image=spec,
            flavour=buildx.flavour_of(args.get("BUILDER_IMAGE", "")), no_cache=True,
            provenance="off", rewrite_timestamps=rewrite)
        plan = buildx.plan_build(request)

        def one(arch: buildx.ArchBuild) -> dict:
            started = time.monotonic()
            recorded = next(p["digest"] for p in rec["platforms"] if lookup(p["platform"]) == arch.platform)
            row = {"platform": arch.platform.docker, "recorded": recorded, "rebuilt": "", "log": str(arch.log_file)}
            say(f"{arch.platform.docker}: rebuild started (log: {arch.log_file})")
            with open(arch.log_file, "w") as log:
                log.write(f"$ {shlex.join(arch.argv)}\n")
                log.flush()
                r = engine.build(arch.argv, log)
            try:
                if not r.ok:
                    raise ValueError(f"docker buildx build exited {r.exited}")
                row["rebuilt"] = oci_image_digest(arch.archive or Path(), arch.platform.docker)
                row["result"] = "match" if row["rebuilt"] == recorded else "MISMATCH"
            except (OSError, ValueError, KeyError, tarfile.TarError) as e:
                row["result"], row["error"] = "failed", str(e)
            finally:
                if arch.archive is not None and row.get("result") == "match":
                    arch.archive.unlink(missing_ok=True)
                elif arch.archive is not None and arch.archive.exists():
                    row["archive"] = str(arch.archive)  # kept: compare it with the released image
            row["seconds"] = round(time.monotonic() - started, 1)
            say(f"{arch.platform.docker}: {row['result']}")
            return row

        with ThreadPoolExecutor(max_workers=settings.jobs or len(plan.arches)) as pool:
            rows = list(pool.map(one, plan.arches))
    print()
    print(compare_table(rows))
    report = settings.out_dir / "rebuild-report.json"
    report.write_text(json.dumps({"record": str(record), "version": rec.get("version"), "commit": rec["commit"],
                                  "engine": {"docker": facts.engine_version, "buildkit": facts.buildkit_version},
                                  "platforms": rows}, indent=2) + "\n")
    print()
    say(f"report: {report} ({human_seconds(time.monotonic() - t0)})")
    bad = [r for r in rows if r["result"] != "match"]
    if bad:
        raise RebuildError(f"not reproduced: {', '.join(r['platform'] + ' ' + r['result'] for r in bad)} "
                           f"(logs and the rebuilt OCI archives under {out}: compare them with the released images, "
                           f"e.g. with diffoscope)")
    say(f"reproduced: every platform's image is byte for byte the released one ({len(rows)} platform(s))")
