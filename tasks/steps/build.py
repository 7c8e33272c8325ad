"""`inv build`: cross-compile the project for every platform, push each arch, join one manifest list.

Resolve settings -> gather (project, git, engine) -> plan (tasks.buildx, pure) -> run -> report.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..common import say, say_block
from ..core import buildx, image
from ..core.build_plan import (
    NO_ENGINE,
    EngineSide,
    ProjectFacts,
    check_same_debian_release,
    check_toolchains,
    pin_base_images,
    plan_request,
)
from ..core.capabilities import Features, decide, require_annotations, require_cache_export
from ..core.image import ImageSpec
from ..core.platforms import base_image_problem
from ..core.project import Target, check_lockfile, choose_target, crossdock_metadata, probe_project
from ..core.recipe import probe_recipe, write_recipe
from ..core.references import manifest_size, pushed_platform
from ..core.report import ArchResult, BuildResult, human_seconds, summary_table
from ..core.settings import SUITE_ROOT, Settings, resolve, unknown_metadata_keys
from ..engine.docker import Engine, EngineError
from ..engine.preflight import emulator_warning
from ..engine.vcs import VcsInfo, probe_vcs
from .private import build_secrets, check_private_sources, probe_private_sources

DOCKER_DIR = SUITE_ROOT / "docker"
SHELL_FILES = ("platform.sh", "jobserver.sh", "sources.sh")  # staged into target/crossdock/sh/
STATUS_EVERY = 20.0  # seconds between progress lines while builds run
LOG_TAIL = 60  # lines of a failed arch's log printed on the console

def stage_build_files(project: Path, *, package: str = "", spec: ImageSpec | None = None,
                      network: str = "default") -> Path:
    """Stage into <project>/target/crossdock: the Dockerfile (docker/Dockerfile, then the image stage rendered
    from ``spec``; None: the project's own with default settings), platform.sh, a merged ignore file, the
    image's layout and assets (image/), the compile's own environment (build-env), and the dependency recipe
    for the binary of cargo package ``package`` ("" = the root package)."""
    if spec is None:
        spec = project_spec(project, package=package)
    write_recipe(project, probe_recipe(project, package=package))
    staged = project / buildx.STAGED_DIR
    staged.mkdir(parents=True, exist_ok=True)
    private = probe_private_sources(project).any  # every staging of a project agrees: the build's, its SBOM's
    dockerfile = buildx.staged_dockerfile((DOCKER_DIR / "Dockerfile").read_text(), network, private=private)
    (staged / "Dockerfile").write_text(dockerfile + "\n" + image.render_image_stage(spec))
    shell = staged / "sh"  # platform.sh and the files it sources
    shutil.rmtree(shell, ignore_errors=True)
    shell.mkdir()
    for name in SHELL_FILES:
        shutil.copyfile(DOCKER_DIR / name, shell / name)
        (shell / name).chmod(0o755)
    (staged / "build-env").write_text(image.build_env_text(spec))
    tree = staged / "image"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "files").mkdir(parents=True)
    (tree / "layout").write_text(image.layout_text(spec))
    for asset in spec.assets:
        dest = tree / "files" / asset.dest.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project / asset.source, dest)
    user_ignore = project / ".dockerignore"
    rules = user_ignore.read_text() if user_ignore.is_file() else ""
    (staged / "Dockerfile.dockerignore").write_text(buildx.merge_dockerignore(rules))
    return staged


def plan_spec(settings: Settings, target: Target, metadata: dict | None = None) -> ImageSpec:
    """The image spec of this build: the project's crossdock metadata (read again unless given), its assets as
    the disk has them, and the settings."""
    if metadata is None:
        metadata = crossdock_metadata(settings.project, package=target.cargo_package or settings.package)
    assets = image.probe_assets(settings.project, target.package.directory, metadata.get("assets"))
    heads = {}  # the #! line of each executable asset (an entrypoint script is one: the planner reads it)
    for source in assets:
        for rel, _ in source.files if source.mode & 0o111 else ():
            try:
                with open(settings.project / rel, "rb") as f:
                    heads[rel] = f.read(256)
            except OSError:
                pass
    inputs = image.SpecInputs(bin=target.bin, package_binaries=target.package.binaries,
                              package_features=target.package.features, runtime=settings.runtime,
                              runtime_packages=settings.runtime_packages, port=settings.port,
                              bin_set_explicitly=bool(settings.bin), assets=assets, heads=heads)
    unknown = unknown_metadata_keys(metadata)
    if unknown:
        hints = [f"{key} (did you mean {close}?)" if close else key for key, close in unknown]
        raise image.ImageSpecError(f"{settings.project / 'Cargo.toml'}: [package.metadata.crossdock] has keys that "
                                   f"are no setting or image key: {', '.join(hints)}")
    return image.plan_image_spec(metadata, inputs)


def project_spec(project: Path, *, package: str = "") -> ImageSpec:
    """The image spec a project gets with crossdock's defaults and its own Cargo metadata (no flags, no .env)."""
    metadata = crossdock_metadata(project, package=package)
    settings = resolve(cli={"project": str(project), "package": package or None}, metadata=metadata)
    packages, root_name = probe_project(project)
    target = choose_build_target(settings, packages, root_name, metadata=metadata)
    return plan_spec(settings, target, metadata_for(target, settings, metadata))


def metadata_for(target: Target, settings: Settings, metadata: dict) -> dict | None:
    """``metadata`` (read for the settings' package) when it is the chosen target's too; None (plan_spec reads
    the member's table) when the target is a workspace member the settings did not name."""
    return metadata if (target.cargo_package or settings.package) == settings.package else None


def choose_build_target(settings: Settings, packages, root_name: str, *, metadata: dict | None = None) -> Target:
    """The package and binary: with ``bins`` in the metadata (read unless given) and no --bin, the first of
    them."""
    bin_name = settings.bin
    if not bin_name:
        if metadata is None:
            metadata = crossdock_metadata(settings.project, package=settings.package)
        bins = metadata.get("bins")
        if isinstance(bins, list) and bins and isinstance(bins[0], str):
            bin_name = bins[0]
    return choose_target(packages, bin=bin_name, package=settings.package, root_package=root_name)


def probe_project_facts(settings: Settings, *, known: tuple[Target, VcsInfo | None] | None = None,
                        vcs_probe: Future[VcsInfo | None] | None = None) -> ProjectFacts:
    """The binary to ship (the lock file checked), the image spec and the commit (``known``: what a caller, the
    release, already read; ``vcs_probe``: git asked already, in the background)."""
    if known is None:
        packages, root_name = probe_project(settings.project)
        metadata = crossdock_metadata(settings.project, package=settings.package)  # read once for both
        target = choose_build_target(settings, packages, root_name, metadata=metadata)
        check_lockfile(settings.project, packages)
        spec = plan_spec(settings, target, metadata_for(target, settings, metadata))
        vcs = vcs_probe.result() if vcs_probe is not None else probe_vcs(settings.project)
    else:
        target, vcs = known
        spec = plan_spec(settings, target)
    return ProjectFacts(target=target, spec=spec, vcs=vcs)


def probe_engine_side(engine: Engine, settings: Settings) -> tuple[str, str, dict[str, str]]:
    """(driver, a problem of the runtime image's platforms, the base images' pins): the engine first, then the
    registry (each base image's index read once; usually one image for both)."""
    driver = engine.info().driver
    indexes = {base: engine.index_digest(base) for base in dict.fromkeys((settings.builder_image,
                                                                           settings.runtime_image))}
    offered = [e.platform for e in indexes[settings.runtime_image][1]]
    return (driver, base_image_problem(settings.runtime_image, offered, settings.platforms),
            pin_base_images(settings, {base: digest for base, (digest, _) in indexes.items()}))


def gather(
    engine: Engine, settings: Settings, *, no_cache: bool = False, manifest_tag: str = "",
    version: str = "", known: tuple[Target, VcsInfo | None] | None = None, secret_args: tuple[str, ...] = (),
    git_tools: tuple[str, ...] = (), join: bool = True,
) -> tuple[buildx.BuildPlan, Target, VcsInfo | None]:
    """Probe (the project, git and the engine, git and the engine at once: both mostly wait on other
    processes), then plan (``build_plan.plan_request``, pure). A dry run with no engine plans for the
    default builder (``NO_ENGINE``); anything the engine cannot do that the settings ask for stops here."""
    check_same_debian_release(settings.builder_image, settings.runtime_image)  # before any probe
    check_toolchains(settings)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="crossdock-probe") as pool:
        vcs_probe = pool.submit(probe_vcs, settings.project) if known is None else None
        engine_probe = pool.submit(probe_engine_side, engine, settings)
        project = probe_project_facts(settings, known=known, vcs_probe=vcs_probe)
    if project.vcs is None:
        say(f"warning: {settings.project} is not in a git repository: revision 'unknown', SOURCE_DATE_EPOCH=0")
    try:
        driver, problem, pins = engine_probe.result()
    except EngineError as e:
        if not engine.dry:
            raise
        say(f"warning (dry run): {e}; planning for the default 'docker' driver, no attestations")
        side = NO_ENGINE
    else:
        if problem:
            raise EngineError(problem)
        side = EngineSide(driver=driver, features=build_features(engine, settings, driver), pins=pins)
        if settings.cache != "off":
            require_cache_export(engine.capabilities(), cache=settings.cache)
        if project.spec.annotations:
            require_annotations(engine.capabilities())
    for warning in emulator_warning(settings.platforms):
        say(warning)
    request = plan_request(settings, project, side, no_cache=no_cache, manifest_tag=manifest_tag, version=version,
                           secret_args=secret_args, git_tools=git_tools, join=join)
    return buildx.plan_build(request), project.target, project.vcs


def build_features(engine: Engine, settings: Settings, driver: str) -> Features:
    """Provenance and timestamp rewriting as the settings ask and the engine can (notes where ``auto`` cannot;
    an explicit request the engine cannot do, or a missing skopeo, is an error before anything is built)."""
    if settings.output == "load":  # images go into the local engine: no registry, no attestation to carry
        return Features(provenance="off", rewrite_timestamps=False)
    features = decide(engine.capabilities(), provenance=settings.provenance, reproducible=settings.reproducible)
    for note in features.notes:
        say(note)
    if features.rewrite_timestamps and driver not in buildx.PUSH_BY_DIGEST_DRIVERS and not shutil.which("skopeo"):
        raise EngineError("rewriting timestamps with the docker driver needs skopeo (it pushes the OCI export with "
                          "its digests preserved): apt-get install skopeo (scripts/provision-local.sh packages), "
                          "or set reproducible to off")
    return features


def run_arch(engine: Engine, plan: buildx.BuildPlan, arch: buildx.ArchBuild, *,
             started_at: dict[str, float] | None = None) -> ArchResult:
    """Build one arch; on success also look up its image size (while the other arches still build)."""
    started = time.monotonic()
    if started_at is not None:
        started_at[arch.platform.name] = started
    base = dict(platform=arch.platform, triple=arch.triple, log=str(arch.log_file))
    if engine.dry:
        engine.build(arch.argv)
        if arch.push_argv:  # the OCI export's push (skopeo), as a real build runs it
            engine.act(arch.push_argv)
        return ArchResult(ok=True, **base)
    say(f"{arch.platform.docker}: build started (log: {arch.log_file})")
    arch.metadata_file.unlink(missing_ok=True)
    with open(arch.log_file, "w") as log:
        log.write(f"$ {shlex.join(arch.argv)}\n")
        log.flush()
        r = engine.build(arch.argv, log)
        if r.ok and arch.push_argv:
            log.write(f"$ {shlex.join(arch.push_argv)}\n")
            log.flush()
            pushed = engine.act(arch.push_argv, out=log)
            if arch.archive is not None:
                arch.archive.unlink(missing_ok=True)
            if not pushed.ok:
                return ArchResult(ok=False, seconds=time.monotonic() - started,
                                  error=f"skopeo copy exited {pushed.exited} (pushing the OCI export)", **base)
    seconds = time.monotonic() - started
    if not r.ok:
        return ArchResult(ok=False, seconds=seconds, error=f"docker buildx build exited {r.exited}", **base)
    try:
        digest = buildx.parse_metadata(arch.metadata_file.read_text())
    except (OSError, ValueError) as e:
        return ArchResult(ok=False, seconds=seconds, error=f"no digest after the build: {e}", **base)
    flavour, triple = used_toolchain(plan, arch)
    base.update(triple=triple, flavour=flavour)
    return _with_size_and_ref(engine, plan, arch, ArchResult(ok=True, digest=digest, seconds=seconds, **base))


def used_toolchain(plan: buildx.BuildPlan, arch: buildx.ArchBuild) -> tuple[str, str]:
    """The Rust flavour and target the build really used: what platform.sh printed in the compile step;
    when that step came from BuildKit's cache, what it printed the last time it ran for this project and
    platform (kept beside the staged build files); with neither, the plan's expectation."""
    record = plan.request.project / buildx.STAGED_DIR / f"toolchain-{arch.platform.suffix}.json"
    try:
        found = buildx.built_with(arch.log_file.read_text(errors="replace"))
    except OSError:
        found = None
    if found and arch.joint:
        say(f"warning: {arch.platform.docker}: the joint compile was not in BuildKit's cache for this platform's "
            f"build, which compiled again (a builder with several nodes, or its cache pruned meanwhile)")
    elif arch.joint and plan.joint is not None:  # compiled by the joint step: its log says how
        try:
            found = buildx.built_with(plan.joint.log_file.read_text(errors="replace"), arch.triple)
        except OSError:
            found = None
    if found:
        record.write_text(json.dumps({"flavour": found[0], "rust_target": found[1]}) + "\n")
        return found
    try:
        data = json.loads(record.read_text())
        return data["flavour"], data["rust_target"]
    except (OSError, ValueError, KeyError, TypeError):
        return plan.request.flavour, arch.triple


def _with_size_and_ref(engine: Engine, plan: buildx.BuildPlan, arch: buildx.ArchBuild, r: ArchResult) -> ArchResult:
    """The size and the pullable reference of what was built; for a push, also what the digest holds: an
    index of the image and its attestation (``digest`` becomes the image's, ``pushed`` the index's)."""
    repo = plan.request.repository
    if plan.request.output == "load":
        ref = f"{repo}:{arch.tag}"
        size = engine.local_image_size(ref)
        return replace(r, reference=ref, size=int(size) if size.isdigit() else 0)
    raw = engine.manifest_raw(f"{repo}@{r.digest}")
    if not raw.ok or not raw.stdout:
        return replace(r, ok=False, error=f"cannot read what was pushed ({repo}@{r.digest}): {raw.error}")
    try:
        pushed = pushed_platform(r.digest, raw.stdout)
    except ValueError as e:
        return replace(r, ok=False, error=str(e))
    if pushed.image != pushed.index:
        raw = engine.manifest_raw(f"{repo}@{pushed.image}")
    size = manifest_size(raw.stdout) if raw.ok and raw.stdout else 0
    return replace(r, digest=pushed.image, pushed=pushed.index, attestation=pushed.attestation,
                   reference=f"{repo}@{pushed.image}", size=size)


def _log_tail(path: str, lines: int = LOG_TAIL) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


@dataclass(frozen=True)
class JointOutcome:
    """What the joint compile did: the platforms' builds to run next (none when it failed: ``failed`` says
    so for each platform), and for the report how the binaries were compiled."""

    arches: tuple[buildx.ArchBuild, ...]
    failed: tuple[ArchResult, ...] = ()
    compile: dict = field(default_factory=dict)


def run_joint(engine: Engine, plan: buildx.BuildPlan) -> JointOutcome:
    """The joint compile (``plan.joint``) before the platforms' builds, with progress while it runs. When it
    declines (the targets' features differ), each platform's own cargo instead (``plan.separate``)."""
    joint = plan.joint
    if joint is None:
        return JointOutcome(arches=plan.arches, compile={"joint": False})
    names = ", ".join(p.docker for p in plan.request.platforms)
    if engine.dry:
        engine.build(joint.argv)
        return JointOutcome(arches=plan.arches, compile={"joint": True, "targets": joint.targets})
    say(f"compiling for {names} with one cargo (log: {joint.log_file})")
    shutil.rmtree(joint.out_dir, ignore_errors=True)
    started = time.monotonic()
    with open(joint.log_file, "w") as log, ThreadPoolExecutor(1, thread_name_prefix="crossdock-joint") as pool:
        log.write(f"$ {shlex.join(joint.argv)}\n")
        log.flush()
        running = pool.submit(engine.build, joint.argv, log)
        while not wait([running], timeout=STATUS_EVERY).done:
            say(f"still compiling for {names}: {human_seconds(time.monotonic() - started)} "
                f"[{buildx.current_step(_log_tail(str(joint.log_file), 200))}]")
        r = running.result()
    seconds = time.monotonic() - started
    if not r.ok:
        return joint_failed(plan, joint, seconds, r.exited)
    if joint.declined.is_file():
        why = joint.declined.read_text().strip()
        say(f"one cargo per platform instead: {why}")
        return JointOutcome(arches=plan.separate, compile={"joint": False, "why": why})
    host, target = buildx.compiled_units(joint.log_file.read_text(errors="replace"))
    say(f"compiled for {names} by one cargo in {human_seconds(seconds)} ({host} unit(s) for the build machine, "
        f"{target} for the targets)")
    return JointOutcome(arches=plan.arches, compile={"joint": True, "targets": joint.targets,
                                                     "host_units": host, "target_units": target})


def joint_failed(plan: buildx.BuildPlan, joint: buildx.JointBuild, seconds: float, exited: int) -> JointOutcome:
    """A failed joint compile: the platforms cargo failed for (as platform.sh named them; all of them when the
    step failed before cargo said) are failed, the others are built each on its own."""
    verdicts = buildx.joint_verdicts(joint.log_file.read_text(errors="replace"))
    failed = [a for a in plan.arches if not verdicts.get(buildx.joint_name(a.platform))]
    error = (f"cargo failed for this platform in the compile for every platform (docker buildx build exited "
             f"{exited})" if verdicts else
             f"the compile for every platform failed: docker buildx build exited {exited}")
    for arch in failed:
        say(f"{arch.platform.docker}: FAILED after {human_seconds(seconds)}: {error}")
    say(f"last {LOG_TAIL} lines of {joint.log_file}:")
    say_block(_log_tail(str(joint.log_file)))
    rest = tuple(a for a in plan.separate if a.platform not in {f.platform for f in failed})
    if rest:
        say(f"building {', '.join(a.platform.docker for a in rest)} each with its own cargo (they compiled)")
    return JointOutcome(arches=rest, compile={"joint": False, "why": "the joint compile failed"}, failed=tuple(
        ArchResult(platform=a.platform, triple=a.triple, ok=False, seconds=seconds, error=error,
                   log=str(joint.log_file)) for a in failed))


def run_plan(engine: Engine, plan: buildx.BuildPlan, *, jobs: int) -> tuple[list[ArchResult], dict]:
    """The joint compile (when planned), then every arch concurrently (at most `jobs` at once), printing
    progress while they run; also how the binaries were compiled. The results are in platform order."""
    outcome = run_joint(engine, plan)
    built = run_arches(engine, plan, outcome.arches, jobs=jobs) if outcome.arches else []
    by_platform = {r.platform: r for r in (*outcome.failed, *built)}
    return [by_platform[p] for p in plan.request.platforms if p in by_platform], outcome.compile


def run_arches(engine: Engine, plan: buildx.BuildPlan, arches: tuple[buildx.ArchBuild, ...], *,
               jobs: int) -> list[ArchResult]:
    if engine.dry:  # nothing runs: print the commands in platform order
        return [run_arch(engine, plan, arch) for arch in arches]
    workers = jobs or len(arches)
    results: dict[str, ArchResult] = {}
    started: dict[str, float] = {}  # filled by run_arch when an arch really starts (--jobs may queue some)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crossdock-build") as pool:
        futures: dict[Future[ArchResult], buildx.ArchBuild] = {
            pool.submit(run_arch, engine, plan, arch, started_at=started): arch for arch in arches}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=STATUS_EVERY, return_when=FIRST_COMPLETED)
            for f in done:
                arch = futures[f]
                try:
                    r = f.result()
                except Exception as e:  # a crash in our own code must still name the platform
                    r = ArchResult(platform=arch.platform, triple=arch.triple, ok=False,
                                   error=f"{type(e).__name__}: {e}", log=str(arch.log_file))
                results[arch.platform.name] = r
                if r.ok:
                    say(f"{r.label}: built in {human_seconds(r.seconds)} ({r.digest})")
                else:
                    say(f"{r.label}: FAILED after {human_seconds(r.seconds)}: {r.error}; "
                        f"last {LOG_TAIL} lines of {r.log}:")
                    say_block(_log_tail(r.log))
            if pending and not done:  # a quiet interval: say what is still running
                now = time.monotonic()
                running = [futures[f] for f in pending if futures[f].platform.name in started]
                queued = len(pending) - len(running)
                say("still building: " + ", ".join(
                    f"{a.platform.docker} {human_seconds(now - started[a.platform.name])}"
                    f" [{buildx.current_step(_log_tail(str(a.log_file), 200))}]" for a in running)
                    + (f" ({queued} queued)" if queued else ""))
    return [results[a.platform.name] for a in arches]


def execute_build(engine: Engine, settings: Settings, *, no_cache: bool = False, manifest_tag: str = "",
                  version: str = "", known: tuple[Target, VcsInfo | None] | None = None,
                  join: bool = True) -> BuildResult | None:
    """Build every platform, join them (unless one failed), print the table, write the report.

    Returns the result (``None`` in a dry run). Raises the domain errors of the checks that run first.
    """
    t0 = time.monotonic()
    dry = engine.dry  # the one dry-run switch: `inv --dry`, as the engine's context has it
    private = probe_private_sources(settings.project)
    check_private_sources(private, settings)
    with build_secrets(private, settings) as secret_args:
        return _execute_build(engine, settings, t0=t0, dry=dry, no_cache=no_cache, manifest_tag=manifest_tag,
                              version=version, known=known, join=join, secret_args=secret_args,
                              git_tools=private.git_tools)


def _execute_build(engine: Engine, settings: Settings, *, t0: float, dry: bool, no_cache: bool, manifest_tag: str,
                   version: str, known: tuple[Target, VcsInfo | None] | None, join: bool,
                   secret_args: tuple[str, ...], git_tools: tuple[str, ...]) -> BuildResult | None:
    plan, target, vcs = gather(engine, settings, no_cache=no_cache, manifest_tag=manifest_tag,
                               version=version, known=known, secret_args=secret_args, git_tools=git_tools,
                               join=join)
    request = plan.request
    say(f"building {target.bin} ({request.build_args['VERSION']}) from {settings.project} for "
        f"{', '.join(p.docker for p in request.platforms)}; "
        + (f"manifest list {plan.manifest_ref}" if plan.manifest_ref else f"loading {request.repository}:"
           f"{request.tag}-<arch>"))
    for note in plan.notes:
        say(note)
    if dry:
        say(f"dry run: would stage docker/Dockerfile, docker/*.sh and Dockerfile.dockerignore into "
            f"{settings.project / buildx.STAGED_DIR}")
    else:
        stage_build_files(settings.project, package=target.cargo_package, spec=request.image,
                          network=settings.build_network)
        request.run_dir.mkdir(parents=True, exist_ok=True)
    results, compiled = run_plan(engine, plan, jobs=settings.jobs)
    if dry:
        if plan.manifest_ref and join:
            engine.imagetools_create(plan.manifest_ref, buildx.imagetools_sources(plan, {}),
                                     request.image.annotations if request.image else ())
        return None
    failed = [r for r in results if not r.ok]
    manifest_digest, problems = "", []
    if not join and plan.manifest_ref:
        say(f"not joining (--no-join): {plan.manifest_ref} is left as it is; `inv merge` joins this report with "
            f"the other arches' ({settings.out_dir / 'build-report.json'})")
    elif not failed and plan.manifest_ref:
        say(f"joining {len(results)} platform(s) into {plan.manifest_ref}")
        manifest_digest, problem = engine.join(
            plan.manifest_ref, request.repository, [a.source for a in results], [a.digest for a in results],
            [a.digest for a in results if a.attestation],
            annotations=request.image.annotations if request.image else ())
        if problem:
            problems.append(problem)
            say(f"error: {problem}")
    elif failed and plan.manifest_ref:
        say(f"not creating or moving {plan.manifest_ref}: {len(failed)} platform(s) failed")
    result = BuildResult(project=settings.project, bin=target.bin, build_args=dict(request.build_args),
                         image=request.image,
                         package_version=target.package.version, output=request.output, arches=tuple(results),
                         manifest_ref=plan.manifest_ref if join else "", manifest_digest=manifest_digest,
                         joined=not failed and not problems and bool(manifest_digest or not plan.manifest_ref
                                                                     or not join),
                         problems=tuple(problems), seconds=time.monotonic() - t0,
                         repository=request.repository, tag=request.manifest_tag or request.tag,
                         provenance=request.provenance, reproducible=request.rewrite_timestamps,
                         compile=compiled)
    print()
    print(summary_table(results))
    report_path = settings.out_dir / "build-report.json"
    report_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    print()
    if manifest_digest:
        say(f"manifest list {plan.manifest_ref}@{manifest_digest}")
    say(f"report: {report_path} ({human_seconds(result.seconds)})")
    sys.stdout.flush()
    return result
