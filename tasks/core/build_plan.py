"""From facts to a build request: what `inv build` decides once the project, git and the engine have been
probed. Pure: the probes' answers come in as frozen values (``tasks.build.probe_build`` gathers them), and
the request ``buildx.plan_build`` turns into commands comes out."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import buildx, image
from .capabilities import Features
from .image import ImageSpec
from .platforms import Platform, toolchain_problem
from .project import Target
from .references import join_repository
from .revision import VcsInfo, version_for
from .settings import Settings, SettingsError


@dataclass(frozen=True)
class ProjectFacts:
    """What the project's files and git say: the binary to ship, what goes into the image, the commit."""

    target: Target
    spec: ImageSpec
    vcs: VcsInfo | None


@dataclass(frozen=True)
class EngineSide:
    """What the engine says: its builder's driver, what it will attach (provenance, timestamps), and the
    base images pinned to the digests their tags point at now."""

    driver: str
    features: Features
    pins: Mapping[str, str] = field(default_factory=dict)


# What a dry run plans for when no engine answers (the default builder, nothing attached, bases unpinned).
NO_ENGINE = EngineSide(driver="docker", features=Features(provenance="off", rewrite_timestamps=False))


DEBIAN_RELEASES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14",
                   "sid": "unstable"}
_NUMBERED = {number: name for name, number in DEBIAN_RELEASES.items()}


def debian_release(image: str) -> str:
    """The Debian release an image reference names (``rust:1-bookworm``, ``debian:trixie-slim``,
    ``debian:12``, ``crossdock/debian:bookworm@sha256:...``), or '' when it names none."""
    name = image.split("@", 1)[0]
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    words = [w for part in (*repository.split("/"), tag) for w in re.split(r"[-_.]", part) if w]
    found = [w for w in words if w in DEBIAN_RELEASES]
    if found:
        return found[-1]
    if repository.rsplit("/", 1)[-1] == "debian" and tag:
        return _NUMBERED.get(re.split(r"[-_.]", tag)[0], "")
    return ""


def check_same_debian_release(builder_image: str, runtime_image: str) -> None:
    """A binary built on one Debian release and run on another needs glibc symbols the runtime may lack:
    refused before anything is built when both images name their release and the two differ."""
    built, runs = debian_release(builder_image), debian_release(runtime_image)
    if built and runs and built != runs:
        raise SettingsError(f"the builder image {builder_image} is Debian {built} but the runtime image "
                            f"{runtime_image} is Debian {runs}: the binary's glibc symbols must exist at run time. "
                            f"Use one release for both (--builder-image / --runtime-image, e.g. "
                            f"docker.io/library/rust:1-{runs} with {runtime_image})")


def toolchain_problems(settings: Settings) -> dict[Platform, str]:
    """The requested platforms the builder cannot compile, each with why: arm/v6 with Debian's Rust, a Debian
    release without Rust's standard library for an architecture. Its flavour is read from the image's name
    (rust* images are rustup's); docker/platform.sh refuses again in the build, from what the image really has."""
    flavour, release = buildx.flavour_of(settings.builder_image), debian_release(settings.builder_image)
    return {p: problem for p in settings.platforms if (problem := toolchain_problem(p, flavour, release))}


def check_toolchains(settings: Settings) -> None:
    problems = toolchain_problems(settings)
    if problems:
        raise SettingsError(f"the builder image {settings.builder_image} cannot build every platform asked for:\n"
                            + "\n".join(f"  {p.docker}: {problem}" for p, problem in problems.items()))


def cache_key(project: Path, bin: str) -> str:
    """Names the project's cargo target cache: one per project directory and binary."""
    digest = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '-', bin)}-{digest}"


def build_args(settings: Settings, target: Target, vcs: VcsInfo | None, *, spec: ImageSpec,
               version: str = "", git_tools: tuple[str, ...]) -> dict[str, str]:
    """Every build argument docker/Dockerfile gets (the spec's own from ``image.build_args``); ``git_tools``: what
    the compile steps fetch the project's git dependencies with (``PrivateSources.git_tools``)."""
    pkg = target.package
    tools = tuple(dict.fromkeys(settings.build_tools + git_tools))
    return {
        "BUILDER_IMAGE": settings.builder_image,
        "RUNTIME_IMAGE": settings.runtime_image,
        "PACKAGE": target.cargo_package,
        "CARGO_PROFILE": settings.cargo_profile,
        "VERSION": version or version_for(vcs, pkg.version),
        "VCS_REF": vcs.revision if vcs else "unknown",
        "VCS_BRANCH": vcs.branch if vcs else "unknown",
        "DATE": vcs.created if vcs else "unknown",
        "SOURCE_DATE_EPOCH": str(vcs.commit_time) if vcs else "0",
        "SOURCE_URL": pkg.repository or (vcs.remote_url if vcs else ""),
        "DESCRIPTION": pkg.description,
        "LICENSES": pkg.license,
        "CACHE_KEY": cache_key(settings.project, spec.bin),
        "COMPILE_SLOTS": str(settings.compile_slots),
        "COOK_WORKSPACE": "0" if settings.cache == "off" else "1",  # docker/Dockerfile's workspace layer
        "COMPILE_TOKENS": settings.compile_tokens,
        "BUILD_TOOLS": ",".join(tools),
        "BUILD_PACKAGES": ",".join(settings.build_packages),
        **image.build_args(spec),
    }


def pin_base_images(settings: Settings, digests: Mapping[str, str]) -> dict[str, str]:
    """BUILDER_IMAGE and RUNTIME_IMAGE pinned to the digest their tags point at now (``name:tag@sha256:...``,
    ``digests``: image -> what the registry answered): the build, its report and the release record name
    exactly what was built on, so a rebuild can use the same. An image already given by digest, or unreadable
    here (the build then reports it), stays as it is."""
    pins = {}
    for arg, base in (("BUILDER_IMAGE", settings.builder_image), ("RUNTIME_IMAGE", settings.runtime_image)):
        if "@" not in base and digests.get(base):
            pins[arg] = f"{base}@{digests[base]}"
    return pins


def plan_request(settings: Settings, project: ProjectFacts, engine: EngineSide, *, no_cache: bool = False,
                 manifest_tag: str = "", version: str = "", secret_args: tuple[str, ...] = (),
                 git_tools: tuple[str, ...] = (), join: bool = True) -> buildx.BuildRequest:
    """The build request for every platform of the settings: one cargo for all of them (``joint``) when the
    joint-compile setting is auto and the platforms are joined here (--no-join: one platform per CI job, each
    compiled as such a job compiles it)."""
    target, spec = project.target, project.spec
    repository = join_repository(settings.registry, settings.image or target.bin)
    cache_repository, cache_export = buildx.plan_cache(settings.cache, repository=repository,
                                                       registry=settings.registry)
    return buildx.BuildRequest(
        project=settings.project,
        platforms=settings.platforms,
        repository=repository,
        tag=settings.tag,
        output=settings.output,
        driver=engine.driver,
        builder=settings.builder,
        build_args={**build_args(settings, target, project.vcs, spec=spec, version=version, git_tools=git_tools),
                    **engine.pins},
        image=spec,
        run_dir=settings.out_dir / "build",
        flavour=buildx.flavour_of(settings.builder_image),
        no_cache=no_cache,
        manifest_tag=manifest_tag,
        provenance=engine.features.provenance,
        rewrite_timestamps=engine.features.rewrite_timestamps,
        cache_repository=cache_repository,
        cache_export=cache_export,
        network=settings.build_network,
        secret_args=secret_args,
        joint=join and settings.joint_compile == "auto",
    )
