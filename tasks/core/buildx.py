"""Build plans: the exact ``docker buildx`` commands for every platform, as data.

``plan_build`` turns a request into one ``ArchBuild`` per platform plus the ``imagetools create``
step; the task runs them. Pure: no Docker, no subprocess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .image import ImageSpec, annotation_args
from .platforms import Platform
from .private_sources import SECRET_IDS
from .recipe import LAYERS as RECIPE_LAYERS
from .recipe import RECIPE_DIR

# buildx drivers that can push an image by digest alone (no tag). The default `docker` driver
# answers "push-by-digest is currently not implemented for docker driver".
PUSH_BY_DIGEST_DRIVERS = frozenset({"docker-container", "remote", "kubernetes"})
STAGED_DIR = "target/crossdock"  # inside the project: where the build files are staged


@dataclass(frozen=True)
class BuildRequest:
    project: Path
    platforms: tuple[Platform, ...]
    repository: str  # registry/image, e.g. 127.0.0.1:5000/hello-crossdock
    tag: str
    output: str  # "push" | "load" | "oci" (an OCI archive per platform in run_dir, nothing pushed: rebuilds)
    driver: str  # buildx driver of the builder
    builder: str  # "" = current builder
    build_args: Mapping[str, str]
    run_dir: Path  # where metadata files and logs of this run go
    flavour: str = "debian"  # rustup | debian: which triple the builder will use (for reports)
    no_cache: bool = False
    manifest_tag: str = ""  # tag of the manifest list, when it differs from `tag` (release staging)
    provenance: str = "off"  # max | min | off: the SLSA provenance attestation of every platform
    rewrite_timestamps: bool = False  # every file's mtime -> SOURCE_DATE_EPOCH (reproducible digests)
    cache_repository: str = ""  # registry build cache: --cache-from/--cache-to <repo>:buildcache-<arch> ("" = none)
    cache_export: bool = True  # --cache-to too (False: import only)
    image: ImageSpec | None = None  # what goes into the image (None: a rebuild's recorded arguments only)
    network: str = "default"  # the fetching steps' network: default, or host (--allow network.host)
    secret_args: tuple[str, ...] = ()  # --secret/--ssh for private sources (paths and ids only, no value)
    joint: bool = False  # one cargo for every platform (docker/Dockerfile's joint stages), when there are several

    @property
    def joint_targets(self) -> str:
        """TARGETS of a joint compile ("amd64 arm64 arm/v7"), or "" when each platform has its own cargo."""
        if not self.joint or len(self.platforms) < 2:
            return ""
        return " ".join(joint_name(p) for p in self.platforms)

    @property
    def push_by_digest(self) -> bool:
        return self.output == "push" and self.driver in PUSH_BY_DIGEST_DRIVERS


@dataclass(frozen=True)
class ArchBuild:
    platform: Platform
    triple: str
    tag: str  # the per-arch tag ("" when pushed by digest)
    metadata_file: Path
    log_file: Path
    argv: tuple[str, ...]
    push_argv: tuple[str, ...] = ()  # after the build: push its OCI archive (the docker driver's way to
    # publish an image with rewritten timestamps: its own exporter refuses to rewrite them)
    archive: Path | None = None  # that archive (removed once pushed)
    joint: bool = False  # takes its binaries from the joint compile (COMPILE=joint)


@dataclass(frozen=True)
class JointBuild:
    """The compile of every platform by one cargo (``--target joint-out``), exported to ``out_dir``: the
    binaries, or ``per-platform`` saying why it compiled nothing. It runs first; each platform's build (with
    COMPILE=joint) then finds its steps in BuildKit's cache and only assembles the image."""

    targets: str  # TARGETS: "amd64 arm64 arm/v7"
    argv: tuple[str, ...]
    log_file: Path
    out_dir: Path

    @property
    def declined(self) -> Path:
        return self.out_dir / "per-platform"


@dataclass(frozen=True)
class BuildPlan:
    request: BuildRequest
    arches: tuple[ArchBuild, ...]
    manifest_ref: str  # repository:tag of the manifest list ("" in load mode)
    notes: tuple[str, ...] = field(default=())
    joint: JointBuild | None = None  # run before ``arches`` (which take its binaries), when planned
    separate: tuple[ArchBuild, ...] = ()  # with ``joint``: each platform with its own cargo, when it declines




def staging_tag(tag: str, platform: Platform) -> str:
    """Per-arch tag when the builder cannot push by digest: never a release tag."""
    return f"{staging_index_tag(tag)}-{platform.suffix}"


def staging_index_tag(tag: str) -> str:
    """The manifest list a release builds and smoke-tests before any release tag moves."""
    return f"staging-{tag}"


def load_tag(tag: str, platform: Platform) -> str:
    return f"{tag}-{platform.suffix}"


def buildx_prefix(builder: str) -> tuple[str, ...]:
    return ("docker", "buildx") + (("--builder", builder) if builder else ())


def flavour_of(builder_image: str) -> str:
    """Guess the builder flavour from its image name, for reporting: rustup images are named rust*."""
    name = builder_image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return "rustup" if name.startswith("rust") else "debian"


def plan_arch(request: BuildRequest, platform: Platform, *, compile_args: tuple[str, ...] = ()) -> ArchBuild:
    tag = ""
    rewrite = ",rewrite-timestamp=true" if request.rewrite_timestamps else ""
    push: tuple[str, ...] = ()
    archive = None
    if request.output == "load":
        tag = load_tag(request.tag, platform)
        output = ("--tag", f"{request.repository}:{tag}", "--load")
    elif request.output == "oci":
        archive = request.run_dir / f"{platform.suffix}.oci.tar"
        output = ("--output", f"type=oci,dest={archive}{rewrite}")
    elif request.push_by_digest:
        output = ("--output", f"type=image,name={request.repository},push-by-digest=true,name-canonical=true,"
                              f"push=true{rewrite}")
    elif rewrite:
        # The docker driver's image exporter always unpacks into the engine, which rewriting timestamps
        # "conflicts with": export an OCI archive instead and push it unchanged (digests preserved).
        tag = staging_tag(request.tag, platform)
        archive = request.run_dir / f"{platform.suffix}.oci.tar"
        output = ("--output", f"type=oci,dest={archive}{rewrite}")
        push = skopeo_push(archive, f"{request.repository}:{tag}")
    else:
        tag = staging_tag(request.tag, platform)
        output = ("--tag", f"{request.repository}:{tag}", "--push")
    metadata = request.run_dir / f"{platform.suffix}.metadata.json"
    provenance = "false" if request.provenance == "off" else f"mode={request.provenance}"
    args: list[str] = [*buildx_prefix(request.builder), "build",
                       "--platform", platform.docker,
                       "--file", str(request.project / STAGED_DIR / "Dockerfile"),
                       "--progress", "plain",
                       "--provenance", provenance,
                       "--metadata-file", str(metadata)]
    if request.no_cache and not compile_args:  # (joint: the joint compile ran without the cache just before)
        args.append("--no-cache")
    args += cache_args(request.cache_repository, platform, export=request.cache_export)
    for key, value in request.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    args += compile_args
    if request.image is not None and request.output != "load":
        args += annotation_args(request.image)
    args += [*network_args(request.network), *request.secret_args, *output, str(request.project)]
    return ArchBuild(platform=platform, triple=platform.rust_triple, tag=tag,
                     metadata_file=metadata, log_file=request.run_dir / f"{platform.suffix}.log",
                     argv=tuple(args), push_argv=push, archive=archive, joint=bool(compile_args))


def network_args(network: str) -> tuple[str, ...]:
    """The entitlement the staged Dockerfile's ``RUN --network=host`` steps need (build_network = host)."""
    return ("--allow", "network.host") if network == "host" else ()


# The compile steps' mounts of the private sources' credentials: their secrets and the SSH agent, each with the
# space (or line continuation) after it.
_SECRETS = "|".join(SECRET_IDS)
PRIVATE_MOUNTS = re.compile(rf"--mount=type=(?:secret,id=(?:{_SECRETS})|ssh)[ \t]+(?:\\\n[ \t]*)?")


def staged_dockerfile(text: str, network: str, *, private: bool = True) -> str:
    """docker/Dockerfile as staged: with build_network = host, the steps that fetch (they mount the cargo
    credentials) run on the build machine's network; for a project with no private source (``private``
    False), the compile steps mount no secret and no SSH agent: BuildKit took about 3 s before starting each
    step that mounts them, passed or not (measured here on 26.1 from --progress rawjson; a compile has three)."""
    if network == "host":
        text = text.replace("RUN --mount=type=secret,id=cargo-credentials",
                            "RUN --network=host --mount=type=secret,id=cargo-credentials")
    return text if private else PRIVATE_MOUNTS.sub("", text)


def cache_ref(repository: str, platform: Platform) -> str:
    """Where one platform's registry build cache lives: one tag per arch, shared by every build of it."""
    return f"{repository}:buildcache-{platform.suffix}"


def cache_args(repository: str, platform: Platform, *, export: bool = True) -> tuple[str, ...]:
    """Import the platform's registry cache and (``export``) write every layer of this build to it
    (``mode=max``: the toolchain and dependency layers too, not only the final image's), zstd-compressed
    (measured here: a first export of the toolchain layers 19 s instead of gzip's 94 s, a no-change one 1 s
    instead of 64 s), for runners that start empty."""
    if not repository:
        return ()
    ref = cache_ref(repository, platform)
    return ("--cache-from", f"type=registry,ref={ref}",
            *(("--cache-to", f"type=registry,ref={ref},mode=max,compression=zstd") if export else ()))


def plan_cache(setting: str, *, repository: str, registry: str) -> tuple[str, bool]:
    """(cache repository, export it) for the cache setting: off, on, <repository>, read, read:<repository>.
    A repository whose first part is no registry host (Docker's rule: it has a '.' or ':', or is localhost)
    is in the registry setting's registry."""
    if setting == "off":
        return "", False
    export = not (setting == "read" or setting.startswith("read:"))
    name = setting.removeprefix("read:") if setting.startswith("read:") else setting
    if name in ("on", "read"):
        return repository, export
    first = name.split("/", 1)[0]
    has_host = "/" in name and ("." in first or ":" in first or first == "localhost")
    return (name if has_host or not registry else f"{registry.rstrip('/')}/{name}"), export


# Registries Docker talks plain HTTP to without configuration (its default insecure set): skopeo is told.
LOOPBACK = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$")


def skopeo_push(archive: Path, ref: str) -> tuple[str, ...]:
    """``skopeo copy`` of an OCI archive (an image, or an index of image + attestations) to ``ref``, every
    manifest byte for byte (``--preserve-digests``). Credentials: the Docker client's (``docker login``);
    CAs: ``/etc/docker/certs.d``, as for Docker itself."""
    host = ref.split("/", 1)[0] if "/" in ref else ""
    tls = ("--dest-tls-verify=false",) if LOOPBACK.match(host) else ()
    return ("skopeo", "copy", "--all", "--preserve-digests", "--quiet", *tls, f"oci-archive:{archive}",
            f"docker://{ref}")


def plan_build(request: BuildRequest) -> BuildPlan:
    targets = request.joint_targets
    joint, separate = None, ()
    if targets:
        compile_args = joint_compile_args(targets)
        arches = tuple(plan_arch(request, p, compile_args=compile_args) for p in request.platforms)
        separate = tuple(plan_arch(request, p) for p in request.platforms)
        joint = plan_joint(request, targets, compile_args)
    else:
        arches = tuple(plan_arch(request, p) for p in request.platforms)
    manifest_ref = "" if request.output in ("load", "oci") else \
        f"{request.repository}:{request.manifest_tag or request.tag}"
    notes = []
    if request.output == "push" and not request.push_by_digest:
        notes.append(f"builder driver {request.driver!r} cannot push by digest: each arch is pushed under "
                     f"a staging tag (staging-{request.tag}-<arch>) and joined by digest"
                     + ("; timestamps rewritten in an OCI export, pushed with skopeo"
                        if request.rewrite_timestamps else ""))
    return BuildPlan(request=request, arches=arches, manifest_ref=manifest_ref, notes=tuple(notes), joint=joint,
                     separate=separate)


def joint_name(platform: Platform) -> str:
    """A platform as TARGETS names it, and platform.sh's verdicts after a joint compile ("arm/v7")."""
    return platform.docker.removeprefix("linux/")


def joint_compile_args(targets: str) -> tuple[str, ...]:
    """The build arguments of a platform's build (or SBOM build) that takes its binaries from the joint
    compile of ``targets`` ("" = its own compile: none)."""
    return ("--build-arg", "COMPILE=joint", "--build-arg", f"TARGETS={targets}") if targets else ()


def plan_joint(request: BuildRequest, targets: str, compile_args: tuple[str, ...]) -> JointBuild:
    """The joint compile's command: every platform's registry cache read (a fresh runner finds the cooked
    layers there; each platform's build writes the cache, the joint steps included), nothing pushed."""
    out_dir = request.run_dir / "joint"
    args: list[str] = [*buildx_prefix(request.builder), "build",
                       "--file", str(request.project / STAGED_DIR / "Dockerfile"),
                       "--progress", "plain", "--provenance", "false", "--target", "joint-out"]
    if request.no_cache:
        args.append("--no-cache")
    for platform in request.platforms:
        args += cache_args(request.cache_repository, platform, export=False)
    for key, value in request.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    args += [*compile_args, *network_args(request.network), *request.secret_args,
             "--output", f"type=local,dest={out_dir}", str(request.project)]
    return JointBuild(targets=targets, argv=tuple(args), log_file=request.run_dir / "joint.log", out_dir=out_dir)


def digest_placeholder(platform: Platform) -> str:
    return f"<digest of {platform.docker}>"


def imagetools_sources(plan: BuildPlan, digests: Mapping[str, str]) -> tuple[str, ...]:
    """What ``docker buildx imagetools create`` joins under the manifest tag: every arch, by digest.

    ``digests`` maps platform names to ``sha256:...``; missing ones become placeholders (dry run).
    """
    return tuple(f"{plan.request.repository}@{digests.get(a.platform.name) or digest_placeholder(a.platform)}"
                 for a in plan.arches)


def parse_metadata(text: str) -> str:
    """The pushed (or built) image digest from a ``--metadata-file``."""
    data = json.loads(text)
    digest = data.get("containerimage.digest", "")
    if not digest.startswith("sha256:"):
        raise ValueError(f"no containerimage.digest in build metadata: {sorted(data)}")
    return digest


def parse_driver(inspect_output: str) -> str:
    """The driver from ``docker buildx inspect`` output (the first ``Driver:`` line)."""
    for line in inspect_output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Driver":
            return value.strip()
    raise ValueError("no 'Driver:' line in docker buildx inspect output")






_STEP = re.compile(r"^#(\d+) \[([^\]]+)\]")
_CARGO_PROGRESS = re.compile(r"^#(\d+) [\d.]+\s+(Compiling|Building|Finished|Downloaded|Locking|Checking) (.*)$")


def current_step(log_text: str) -> str:
    """What an arch is doing, from a ``--progress plain`` log: the last BuildKit step that started (e.g.
    ``build 4/4``; never a bracketed word from a step's own output), and inside it cargo's own progress
    (the crate it compiles) or that it waits for a compile slot or a jobserver token."""
    step_id, step = "", "starting"
    detail = ""
    for line in log_text.splitlines():
        m = _STEP.match(line)
        if m and not m.group(2).startswith("internal"):
            step_id, step, detail = m.group(1), m.group(2), ""
            continue
        if not step_id or not line.startswith(f"#{step_id} "):
            continue
        cargo = _CARGO_PROGRESS.match(line)
        if cargo:
            crate = cargo.group(3).split(" (", 1)[0]
            detail = f"{cargo.group(2).lower()} {crate}"
        elif "platform.sh: waiting for" in line and "compile slot" in line:
            detail = "waiting for a compile slot"
        elif "platform.sh: got compile slot" in line:
            detail = "got a compile slot"
        elif "platform.sh: waiting for a compile token" in line:
            detail = "waiting for a compile token"
    return f"{step}: {detail}" if detail else step


_CARGO_LINE = re.compile(r"platform\.sh: cargo .*--target (\S+).* \(flavour (rustup|debian),")


def built_with(log_text: str, triple: str = "") -> tuple[str, str] | None:
    """(flavour, Rust target) that platform.sh reported in a build log, or None (the step was cached). A
    joint compile's log names several targets: ``triple`` (when it is one of them) is the one asked about."""
    found = None
    for m in _CARGO_LINE.finditer(log_text):
        targets = re.findall(r"--target (\S+)", m.group(0))
        found = (m.group(2), triple if triple in targets else m.group(1))
    return found


_UNITS = re.compile(r"platform\.sh: (?:cook: )?compiled (\d+) unit\(s\) for the build machine .* and (\d+) for ")


def compiled_units(log_text: str) -> tuple[int, int]:
    """(units for the build machine, units for the targets) cargo compiled in the steps a log shows (the
    dependency layers' and the build's; a cached step shows none), as platform.sh counted them from cargo's
    own messages."""
    host = target = 0
    for m in _UNITS.finditer(log_text):
        host, target = host + int(m.group(1)), target + int(m.group(2))
    return host, target


_VERDICT = re.compile(r"platform\.sh: joint compile: (\S+) (compiled|FAILED)")


def joint_verdicts(log_text: str) -> dict[str, bool]:
    """Per platform of a failed joint compile ("arm/v7": False), whether cargo compiled it, as platform.sh
    said after cargo (--keep-going) gave up; empty when the step failed before that."""
    return {m.group(1): m.group(2) == "compiled" for m in _VERDICT.finditer(log_text)}


def merge_dockerignore(user_rules: str) -> str:
    """The Dockerfile-specific ignore file: the project's own rules, then crossdock's (which win)."""
    lines = ["# Generated by crossdock from the project's .dockerignore (if any) plus crossdock's rules.",
             "# buildx reads it because it sits next to the Dockerfile; it replaces <project>/.dockerignore."]
    if user_rules.strip():
        lines += ["", "# --- the project's .dockerignore ---", user_rules.rstrip()]
    lines += ["", "# --- crossdock: build output, VCS data and secrets never reach the builder ---",
              "target/*", "**/target/*",
              "# the dependency recipe (tasks/core/recipe.py) is sent, with the project's rules applied to it too",
              f"!{RECIPE_DIR}", *recipe_rules(user_rules),
              f"!{STAGED_DIR}/sh", f"!{STAGED_DIR}/build-env", f"!{STAGED_DIR}/image",
              "# last, so that nothing above lets them in (the staged trees included)",
              ".git", "**/.git", ".env", "**/.env", ".env.*", "**/.env.*", ""]
    return "\n".join(lines)


def recipe_rules(user_rules: str) -> list[str]:
    """The project's ignore rules again, for the recipe's trees (copies of the project's files)."""
    rules = []
    for line in user_rules.splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        negated, pattern = rule.startswith("!"), rule.lstrip("!").strip().lstrip("/")
        rules += [f"{'!' if negated else ''}{RECIPE_DIR}/{layer}/{pattern}" for layer in RECIPE_LAYERS]
    return rules
