"""`inv release`: publish exactly the tested digests under the right tags, as a runbook.

Gather (git, Cargo.toml, the registry's tags) -> guards (tasks.guards) -> show the plan -> log in ->
build every platform (staging tags only) -> smoke-test that index -> an SBOM per platform (and, with
--sign-key, sign the index and its platforms and attach the SBOMs, offline: tasks.steps.supply_chain) -> point
every release tag at that same index -> audit (tags, platforms, signatures, SBOMs) -> write the release
record. `--promote-from=RECORD` republishes a recorded index without building (also how `latest` is rolled
back).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from invoke import Context

from .common import say, settings_task
from .core import buildx
from .core.guards import ReleaseError, ReleaseState, check_release, published_from_here
from .core.project import Target, check_lockfile, probe_project
from .core.references import attestations, index_entries, join_repository
from .core.report import BuildResult, MergePlan, format_table, human_seconds, image_settings, plan_merge
from .core.settings import SUITE_ROOT, Settings, parse_flag, tag_prefix_parser
from .core.tags import SemVer, TagPlan, docker_tag, parse_semver, plan_tags
from .engine.cosign import Cosign
from .engine.docker import Engine, Ran
from .engine.emulation import probe_handlers
from .engine.registry import Client, Repo, is_transient
from .engine.secrets import credentials, private_docker_config, require_pair, signing_password
from .engine.vcs import VcsInfo, probe_vcs, project_in_repository
from .steps.build import choose_build_target, execute_build
from .steps.merge import join, read_report
from .steps.smoke import expectations_from_build, expectations_from_report, run_smoke
from .steps.supply_chain import OFFLINE_NOTE, Signing, make_sboms, prepare_signing, sign_and_attest
from .steps.verify import provenance_problems, supply_chain_problems

RETRY_DELAYS = (1.0, 2.0, 4.0)  # seconds between attempts of a registry write (transient errors only)


def create_with_retry(engine: Engine, tag: str, source: str, *, delays: tuple[float, ...] = RETRY_DELAYS) -> Ran:
    """Point a tag at an index; retry transient registry failures with backoff, never 401/403/404."""
    r = Ran(ok=False)
    for attempt, delay in enumerate((0.0, *delays)):
        if delay:
            say(f"{tag}: transient registry error, retry {attempt}/{len(delays)} in {delay:.0f}s")
            time.sleep(delay)
        r = engine.imagetools_create(tag, [source])
        if r.ok or not is_transient(r.stderr + r.stdout):
            return r
    return r


def login(engine: Engine, registries: list[str], user: str, password: str) -> None:
    """`docker login --password-stdin` into the task's private Docker config (tasks.engine.secrets): the password
    never appears on a command line or in output, and the login is gone when the task ends."""
    for host in engine.log_in(registries, user, password):
        say(f"logged in to {host} as {user}")


def plan_table(repos: list[str], plans: dict[str, TagPlan], current: dict[str, dict[str, str]]) -> str:
    rows = []
    for repo in repos:
        for tag in plans[repo].tags:
            was = current[repo].get(tag, "")
            rows.append((repo, tag, f"moves from {was[:19]}…" if was else "new"))
        for tag, why in plans[repo].held_back:
            rows.append((repo, tag, f"stays ({why})"))
    return format_table(("repository", "tag", "action"), rows)


def audit(client: Client, repos: list[str], plans: dict[str, TagPlan], index_digest: str,
          platforms: list[str], *, cosign: Cosign | None = None, public_key: Path | None = None,
          provenance: bool = False) -> list[str]:
    """Problems: a tag not on the released index, or an index with other platforms than requested; with
    ``provenance``, a platform without its SLSA provenance attestation in the index; with a public key, also
    the index's and every platform's signature and SBOM attestation (through each tag)."""
    problems = []
    for repo in repos:
        r = Repo.parse(repo)
        for tag in plans[repo].tags:
            got = client.digest(r, tag)
            if got != index_digest:
                problems.append(f"{repo}:{tag} resolves to {got or 'nothing'}, not {index_digest}")
        index = client.manifest(r, index_digest)
        have = sorted(e.platform for e in index_entries(index))
        if have != sorted(platforms):
            problems.append(f"{repo}@{index_digest} has {have}, expected {sorted(platforms)}")
        if provenance:
            problems += [f"{repo}@{index_digest}: {p}" for p in provenance_problems(client, r, index)]
        if cosign is not None and public_key is not None:
            for tag in plans[repo].tags:  # what a user pulling the tag gets, verified as they would
                got = client.digest(r, tag)
                if got and got != index_digest:
                    continue  # already named above
                found, _ = supply_chain_problems(cosign, public_key, repo, got or index_digest,
                                                 index_entries(index))
                problems += [f"{repo}:{tag}: {p}" for p in found]
                break  # the same index behind every tag: one verification per repository
    return problems


def attestation_digests(index: dict) -> dict[str, str]:
    """``{platform: its attestation manifest digest}`` for the record."""
    found = attestations(index)
    return {e.platform: found.get(e.digest, "") for e in index_entries(index)}


def build_record(settings: Settings, report: BuildResult | None, merged: MergePlan | None) -> dict | None:
    """How the released images were built: the build arguments (base images pinned by digest), provenance
    mode, timestamp rewriting, and the project's place in its repository. None for a reused index."""
    if report is not None:
        built = {"args": image_settings(report.build_args), "provenance": report.provenance,
                 "reproducible": report.reproducible, "image": report.image.to_json() if report.image else None}
    elif merged is not None:
        built = {"args": dict(merged.base.get("settings", {})), "provenance": str(merged.base.get("provenance", "off")),
                 "reproducible": bool(merged.base.get("reproducible", False)), "image": merged.base.get("image")}
    else:
        return None
    return {**built, "project": project_in_repository(settings.project)}


def suite_revision() -> str:
    """The crossdock revision that built the release (its Dockerfile and platform.sh shape the images)."""
    suite = probe_vcs(SUITE_ROOT)
    return (suite.revision + ("-dirty" if suite.dirty else "")) if suite else ""


def engine_record(engine: Engine) -> dict[str, str]:
    f = engine.current_facts()
    return {"docker": f.engine_version, "buildkit": f.buildkit_version, "driver": f.driver,
            "image_store": f.image_store}


def base_image_digests(engine: Engine, settings: Settings) -> dict[str, dict[str, str]]:
    result = {}
    for label, image in (("builder", settings.builder_image), ("runtime", settings.runtime_image)):
        entries, _ = engine.image_index(image)
        result[label] = {"image": image, **{e.platform: e.digest for e in entries or []}}
    return result


def publish(engine: Engine, repos: list[str], plans: dict[str, TagPlan], source: str) -> list[str]:
    """Point every planned tag at `source` (one index). Each tag moves atomically; failures are listed."""
    failures = []
    for repo in repos:
        for tag in plans[repo].tags:
            r = create_with_retry(engine, f"{repo}:{tag}", source)
            if not r.ok:
                failures.append(f"{repo}:{tag}: {(r.stderr.strip().splitlines() or ['failed'])[-1]}")
                say(f"FAILED to publish {repo}:{tag}")
            elif not engine.dry:
                say(f"published {repo}:{tag}")
    return failures


@dataclass(frozen=True)
class ReleasePlan:
    """Everything the gathering half of a release found, for the acting half."""

    settings: Settings
    version: SemVer
    state: ReleaseState
    target: Target
    vcs: VcsInfo | None
    names: list[str]  # repositories inside the registry (the first one is built)
    repos: list[str]  # registry/name of each
    plans: dict[str, TagPlan]  # repository -> the tags that move and those held back
    current: dict[str, dict[str, str]]  # repository -> tag -> digest it points at now
    signing: Signing | None = None  # --sign-key: cosign and the key
    merged: MergePlan | None = None  # --report: per-arch builds made elsewhere, instead of building here

    @property
    def own(self) -> str:
        """The version's own tag."""
        return docker_tag(self.version)


RELEASE_SETTINGS = ("platforms", "project", "registry", "image", "jobs", "builder_image", "runtime_image", "out_dir",
                    "sign_key", "provenance", "reproducible", "joint_compile", "build_network",
                    "ssh_known_hosts")


@settings_task(
    *RELEASE_SETTINGS, iterable=["report"],
    extend={"image": "Several, comma-separated, publish the same index to each.",
            "sign_key": "Password: COSIGN_PASSWORD (.env or environment)."},
    flags={"tag_prefix": ("v", "Prefix of version tags in git (v for v1.2.3; empty for 1.2.3)."),
           "promote_from": (None, "A release record (out/releases/<version>.json): republish its index under its "
                                  "tags without building (also a rollback of latest)."),
           "report": (None, "A per-arch job's build report (`inv build --no-join` at the tagged commit); give one "
                            "per job: the release joins them instead of building, then smoke-tests and publishes.")},
)
def release(c: Context, settings: Settings, *, tag_prefix: str = "v", promote_from: str | None = None,
            report: list[str] | None = None) -> None:
    """Release the tagged commit: build, smoke-test, then publish the tested index under its tags."""
    t0 = time.monotonic()
    settings = replace(settings, output="push")  # a release always pushes (a bad CROSSDOCK_OUTPUT still stops it)
    parse_flag("--tag-prefix", tag_prefix, tag_prefix_parser)
    user, password = credentials()
    require_pair(user, password)
    client = Client(user, password)
    if promote_from is not None:
        with private_docker_config():
            return promote(Engine(c), settings, client, Path(promote_from), user=user, password=password)
    wanted = settings.platforms
    packages, root_name = probe_project(settings.project)
    target = choose_build_target(settings, packages, root_name)
    check_lockfile(settings.project, packages)
    vcs = probe_vcs(settings.project)
    names = [name.strip() for name in (settings.image or target.bin).split(",") if name.strip()]
    repos = [join_repository(settings.registry, name) for name in names]
    # Gather what the registry has: its tags, and where this version's tag came from.
    existing: dict[str, list[str]] = {}
    current: dict[str, dict[str, str]] = {}
    published: dict[str, str] = {}
    state = ReleaseState(head_tags=vcs.head_tags if vcs else (), dirty=vcs.dirty if vcs else False,
                         cargo_version=target.package.version, revision=vcs.revision if vcs else "",
                         tag_prefix=tag_prefix)
    version = check_release(state)  # git and Cargo guards first: they need no registry
    merged = check_reports(report or [], wanted, version=str(version), revision=state.revision,
                           repository=repos[0]) if report else None
    problems = probe_handlers(wanted)  # the smoke test will need every emulator: stop before building
    if problems:
        raise ReleaseError("cannot smoke-test these platforms under QEMU:\n" + "\n".join(
            f"  {problem}" for problem in problems))
    signing = prepare_signing(Cosign(c, password=signing_password()), settings.sign_key) if settings.sign_key \
        else None  # before any build: cosign is there and the password opens the key
    own = docker_tag(version)
    for repo in repos:
        r = Repo.parse(repo)
        existing[repo] = client.tags(r)
        current[repo] = {}
        if own in existing[repo]:
            published[repo] = client.labels(r, own).get("org.opencontainers.image.revision", "?")
    state = replace(state, published_revisions=published)
    version = check_release(state)
    plans = {repo: plan_tags(version, revision=state.revision, existing=existing[repo]) for repo in repos}
    for repo in repos:
        for tag in plans[repo].tags:
            if tag in existing[repo]:
                current[repo][tag] = client.digest(Repo.parse(repo), tag)

    plan = ReleasePlan(settings=settings, version=version, state=state, target=target, vcs=vcs, names=names,
                       repos=repos, plans=plans, current=current, signing=signing, merged=merged)
    with private_docker_config():
        run_release(Engine(c), client, plan, user=user, password=password, t0=t0)


@dataclass(frozen=True)
class Candidate:
    """The index a release publishes, however it was obtained: reused (already published from this commit),
    merged from per-arch reports, or built here; smoke-tested before any tag moves (a dry run: not yet)."""

    index_digest: str  # a placeholder in a dry run that would build or merge
    source_repo: str  # where the index is (the reused repository, or the first one)
    report: BuildResult | None = None  # the build, when built here
    smoke: dict[str, str] | str = ""  # per platform, or why none ran


def _smoked(engine: Engine, settings: Settings, image: str, expect) -> dict[str, str]:
    """`inv smoke` of the staging index: its per-platform results, or a ReleaseError before any tag moves."""
    smoked = run_smoke(engine, settings, image=image, expect=expect)
    if not smoked.ok:
        raise ReleaseError(f"smoke test failed for {', '.join(x.label for x in smoked.failed)}: nothing was "
                           f"tagged (existing tags are unchanged); see {settings.out_dir / 'smoke-junit.xml'}")
    return {x.label: "ok" for x in smoked.platforms}


def obtain_candidate(engine: Engine, client: Client, plan: ReleasePlan) -> Candidate:
    """The index to publish, by the strategy the state calls for (reuse, merge, build), smoke-tested."""
    settings, own, repos = plan.settings, plan.own, plan.repos
    staging = buildx.staging_index_tag(own)
    reuse = published_from_here(plan.state)
    if reuse:
        digest = client.digest(Repo.parse(reuse), own)
        say(f"{reuse}:{own} is already published from this commit ({digest}): reusing that index, no rebuild")
        return Candidate(index_digest=digest, source_repo=reuse, smoke="reused: smoke-tested when first published")
    if plan.merged:
        digest = join(engine, plan.merged, f"{repos[0]}:{staging}")
        if engine.dry:
            return Candidate(index_digest=f"<index digest of {staging}>", source_repo=repos[0])
        return Candidate(index_digest=digest, source_repo=repos[0], smoke=_smoked(
            engine, settings, f"{repos[0]}@{digest}", expectations_from_report(plan.merged.base)))
    build_settings = replace(settings, tag=own, image=plan.names[0])
    report = execute_build(Engine(engine.c, builder=build_settings.builder), build_settings, manifest_tag=staging,
                           version=str(plan.version), known=(plan.target, plan.vcs))
    if engine.dry or report is None:
        return Candidate(index_digest=f"<index digest of {staging}>", source_repo=repos[0])
    if not report.ok:
        raise ReleaseError("the build failed: nothing was tagged (existing tags are unchanged)")
    return Candidate(index_digest=report.manifest_digest, source_repo=repos[0], report=report, smoke=_smoked(
        engine, settings, f"{repos[0]}@{report.manifest_digest}", expectations_from_build(report)))


def pending_tags(engine: Engine, client: Client, plan: ReleasePlan, candidate: Candidate,
                 public_key: Path) -> dict[str, TagPlan] | None:
    """The tags still to move: all of them, or, re-running a release whose index is published, the ones a
    previous run did not get to (None: nothing to do, every tag and signature is in place)."""
    if not published_from_here(plan.state):
        return plan.plans
    digest, repos = candidate.index_digest, plan.repos
    pending = {repo: TagPlan(tags=tuple(t for t in plan.plans[repo].tags if plan.current[repo].get(t) != digest),
                             held_back=plan.plans[repo].held_back) for repo in repos}
    if any(pending[repo].tags for repo in repos):
        return pending
    signing = plan.signing
    if signing and not engine.dry:  # every tag is there: are its signatures too?
        public_key.parent.mkdir(parents=True, exist_ok=True)
        signing.cosign.public_key(signing.key, public_key)
        entries = index_entries(client.manifest(Repo.parse(candidate.source_repo), digest))
        if any(supply_chain_problems(signing.cosign, public_key, repo, digest, entries)[0] for repo in repos):
            return pending
    return None


def release_record(plan: ReleasePlan, candidate: Candidate, *, index: dict, built_by: dict | None,
                   engine: dict[str, str], crossdock: str, base_images: dict, sboms: dict[str, Path],
                   public_key: Path, toolchains: dict[str, dict[str, str]], released_at: str) -> dict:
    """The release record (out/releases/<version>.json): what was published, how it was built, what
    `inv rebuild` needs to build the same images again. Pure."""
    attested = attestation_digests(index)
    report, merged = candidate.report, plan.merged
    # What each build really used (platform.sh's report); a re-run that reused an index did not build: what
    # the first run recorded, if its record is here, else "not rebuilt" rather than a guess.
    built = {a.label: {"rust_target": a.triple, "rust_flavour": a.flavour} for a in report.arches} if report else \
        {p["platform"]: {"rust_target": p.get("rust_target", ""), "rust_flavour": p.get("rust_flavour", "")}
         for p in merged.platforms} if merged else toolchains
    return {
        "version": str(plan.version),
        "commit": plan.state.revision,
        "branch": plan.vcs.branch if plan.vcs else "",
        "index_digest": candidate.index_digest,
        "platforms": [{"platform": e.platform, "digest": e.digest, "attestation": attested.get(e.platform, ""),
                       **built.get(e.platform, {"rust_target": "not rebuilt (index reused)", "rust_flavour": ""})}
                      for e in index_entries(index)],
        "build": built_by,  # None when this run reused an index
        "engine": engine,
        "crossdock": crossdock,
        "tags": {repo: list(plan.plans[repo].tags) for repo in plan.repos},
        "base_images": base_images,
        "smoke": candidate.smoke,
        "sbom": {platform: str(path) for platform, path in sboms.items()},
        "signature": ({"public_key": str(public_key), "key": plan.signing.key, "transparency_log": False}
                      if plan.signing else None),
        "released_at": released_at,
    }


def run_release(engine: Engine, client: Client, plan: ReleasePlan, *, user: str, password: str, t0: float) -> None:
    """The acting half of the runbook: log in, obtain the index (reuse, merge or build; smoke-tested), sign,
    publish, audit, record. A dry run stops in one place, after printing what it would tag."""
    settings, version, repos, wanted = plan.settings, plan.version, plan.repos, plan.settings.platforms
    say(f"release {version} of {plan.target.bin} from {plan.state.revision[:7]} "
        f"({(plan.vcs and plan.vcs.branch) or 'detached'}) for {', '.join(p.docker for p in wanted)}")
    print(plan_table(repos, plan.plans, plan.current))
    print()
    if user and not engine.dry:
        login(engine, [Repo.parse(r).host for r in repos], user, password)
    candidate = obtain_candidate(engine, client, plan)
    signing, public_key = plan.signing, settings.out_dir / "releases" / f"{plan.own}.pub"
    pending = pending_tags(engine, client, plan, candidate, public_key)
    if pending is None:
        say(f"nothing to do: {version} is already released and every tag points at {candidate.index_digest}")
        return
    source = f"{candidate.source_repo}@{candidate.index_digest}"
    if engine.dry:
        if not published_from_here(plan.state):
            say("dry run: then `inv smoke` on the staging index, an SBOM per platform (a second build of the "
                "cached stages, --target sbom, exported to " + str(settings.out_dir / "sbom" / "<arch>") + ")"
                + (f", cosign sign/attest with {signing.key} ({OFFLINE_NOTE})" if signing else "")
                + ", then (for every tag above):")
        publish(engine, repos, pending, source)
        return
    index = client.manifest(Repo.parse(candidate.source_repo), candidate.index_digest)
    entries = index_entries(index)
    joint = candidate.report.compile if candidate.report is not None else {}
    sboms = make_sboms(engine, settings, plan.target, plan.vcs, version=str(version),
                       repository=candidate.source_repo, entries=entries,
                       joint_targets=joint.get("targets", "") if joint.get("joint") else "")
    if signing:
        say(OFFLINE_NOTE)
        public_key.parent.mkdir(parents=True, exist_ok=True)
        signing.cosign.public_key(signing.key, public_key)
        sign_and_attest(signing, candidate.source_repo, candidate.index_digest, entries, sboms)  # before any tag
    say(f"publishing {source}")
    failures = publish(engine, repos, pending, source)
    if failures:
        raise ReleaseError("publishing stopped: " + "; ".join(failures) + ". Tags already moved point at the "
                           "complete new index, the others at their old one: run the release again to finish")
    if signing:  # the other repositories have the index only now: their own signatures and attestations
        for repo in repos:
            if repo != candidate.source_repo:
                sign_and_attest(signing, repo, candidate.index_digest, entries, sboms)
    built_by = build_record(settings, candidate.report, plan.merged)
    check_audit(client, plan, candidate, index, public_key=public_key,
                provenance=bool(built_by) and built_by["provenance"] != "off")
    record = release_record(plan, candidate, index=index, built_by=built_by, engine=engine_record(engine),
                            crossdock=suite_revision(), base_images=base_image_digests(engine, settings),
                            sboms=sboms, public_key=public_key,
                            toolchains=recorded_toolchains(settings, str(version)),
                            released_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    path = write_record(settings, record)
    print()
    print(format_table(("repository", "tag", "digest"),
                       [(repo, tag, candidate.index_digest) for repo in repos for tag in plan.plans[repo].tags]))
    print()
    say(f"released {version} ({human_seconds(time.monotonic() - t0)}); record: {path}")


def check_audit(client: Client, plan: ReleasePlan, candidate: Candidate, index: dict, *, public_key: Path,
                provenance: bool) -> None:
    """Every tag reads back as the published index (signed and attested as it should be), or ReleaseError."""
    signing = plan.signing
    platforms = [p.docker for p in plan.settings.platforms]
    problems = audit(client, plan.repos, plan.plans, candidate.index_digest, platforms,
                     cosign=signing.cosign if signing else None, public_key=public_key if signing else None,
                     provenance=provenance)
    if problems:
        raise ReleaseError("audit failed: " + "; ".join(problems))
    if signing:
        say(f"audit: every tag's index, its platforms' signatures and SBOM attestations verify with {public_key}")
    if provenance:
        say("audit: every platform keeps its SLSA provenance attestation")
    attested = attestation_digests(index)
    bare = [platform for platform, digest in attested.items() if not digest]
    if bare:
        say(f"audit: {len(bare)} of {len(attested)} platform(s) carry no attestation ({', '.join(bare)}): "
            f"provenance was {'off' if not provenance else 'asked for'} for this build")


def check_reports(paths: list[str], wanted, *, version: str, revision: str, repository: str) -> MergePlan:
    """`--report`: the per-arch builds agree with each other (tasks.core.report.plan_merge) and with this
    release: built from the tagged commit, labelled with its version, pushed to the released repository."""
    merged = plan_merge([read_report(path) for path in paths], wanted)
    problems = []
    if merged.base.get("revision") != revision:
        problems.append(f"they were built from commit {str(merged.base.get('revision'))[:7]}, the release is "
                        f"{revision[:7]}")
    if merged.base.get("version") != version:
        problems.append(f"they carry version {merged.base.get('version')!r}, the release is {version!r} (build "
                        f"them from the clean, tagged checkout)")
    if merged.repository != repository:
        problems.append(f"they were pushed to {merged.repository}, the release publishes {repository}")
    if problems:
        raise ReleaseError("the per-arch reports do not fit this release (nothing was tagged): " + "; ".join(problems))
    return merged


def recorded_toolchains(settings: Settings, version: str) -> dict[str, dict[str, str]]:
    path = settings.out_dir / "releases" / f"{docker_tag(parse_semver(version))}.json"
    try:
        return {p["platform"]: {"rust_target": p["rust_target"], "rust_flavour": p.get("rust_flavour", "")}
                for p in json.loads(path.read_text())["platforms"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_record(settings: Settings, record: dict) -> Path:
    folder = settings.out_dir / "releases"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{docker_tag(parse_semver(record['version']))}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def verify_recorded_signature(engine: Engine, client: Client, record: dict, record_path: Path,
                              repo: str) -> tuple[Cosign | None, Path | None]:
    """A signed release is promoted only while its index and platforms still verify with the key it was
    signed with (the public key beside the record, as the release wrote it): checked before any tag moves.
    (None, None) for an unsigned release."""
    if not record.get("signature"):
        return None, None
    public_key = record_path.with_suffix(".pub")
    if not public_key.is_file():
        raise ReleaseError(f"{record_path} was signed, but its public key {public_key} is not beside it: put the "
                           f"release's public key there (out/releases/<version>.pub), nothing was promoted")
    cosign = Cosign(engine.c)
    cosign.require()
    entries = index_entries(client.manifest(Repo.parse(repo), record["index_digest"]))
    problems, _ = supply_chain_problems(cosign, public_key, repo, record["index_digest"], entries)
    if problems:
        raise ReleaseError("the recorded index does not verify with its key, nothing was promoted:\n"
                           + "\n".join(f"  {problem}" for problem in problems))
    say(f"{repo}@{record['index_digest']}: signatures and SBOM attestations verify with {public_key}")
    return cosign, public_key


def promote(engine: Engine, settings: Settings, client: Client, record_path: Path, *, user: str,
            password: str) -> None:
    """Republish a recorded release: every recorded tag -> the recorded index. No build, no guards; a signed
    release must still verify with its public key first."""
    try:
        record = json.loads(record_path.read_text())
        index_digest, version = record["index_digest"], record["version"]
        tags: dict[str, list[str]] = record["tags"]
        expected = [p["platform"] for p in record["platforms"]]
        if not (index_digest.startswith("sha256:") and tags and all(isinstance(t, list) for t in tags.values())):
            raise ValueError("index_digest or tags are malformed")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ReleaseError(f"cannot read release record {record_path}: {e} (--promote-from takes a file written "
                           f"by `inv release`, out/releases/<version>.json)") from None
    repos = list(tags)
    plans = {repo: TagPlan(tags=tuple(tags[repo]), held_back=()) for repo in repos}
    say(f"promoting {version} ({index_digest}) from {record_path}")
    cosign, public_key = verify_recorded_signature(engine, client, record, record_path, repos[0])
    print(format_table(("repository", "tag", "digest"), [(r, t, index_digest) for r in repos for t in tags[r]]))
    if user and not engine.dry:
        login(engine, [Repo.parse(r).host for r in repos], user, password)
    failures = []
    for repo in repos:
        failures += publish(engine, [repo], plans, f"{repo}@{index_digest}")
    if engine.dry:
        return
    if failures:
        raise ReleaseError("publishing stopped: " + "; ".join(failures) + ": run the promotion again")
    provenance = str((record.get("build") or {}).get("provenance", "off")) != "off"
    problems = audit(client, repos, plans, index_digest, expected, cosign=cosign, public_key=public_key,
                     provenance=provenance)
    if problems:
        raise ReleaseError("audit failed: " + "; ".join(problems))
    say(f"promoted {version}: {', '.join(f'{r}:{t}' for r in repos for t in tags[r])} -> {index_digest}")

