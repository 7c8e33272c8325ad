"""What the engine and builder in use can do, and what to do where they cannot. Pure.

The facts come from `docker info` (engine version, image store) and `docker buildx inspect` (driver,
BuildKit version); ``capabilities`` turns them into rows for `inv setup`. Sources: the buildx drivers'
documentation (the `docker` driver exports to the engine's image store: no push by digest, no cache
export and no attestations with the classic store) and BuildKit's release notes (attestations from
v0.11, timestamp rewriting from v0.13).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import CrossdockError

CONTAINERD_STORE = "containerd"
CACHE_EXPORT = "cache export (--cache-to)"
CLASSIC_STORE = "classic"
NON_DOCKER_DRIVERS = ("docker-container", "remote", "kubernetes")
ATTESTATIONS = "attestations (provenance)"
REWRITE = "timestamp rewriting"
ANNOTATIONS = "annotations (--annotation)"


@dataclass(frozen=True)
class EngineFacts:
    engine_version: str  # dockerd's, e.g. 26.1.5
    buildkit_version: str  # e.g. v0.8+unknown, v0.13.2
    driver: str  # buildx driver: docker, docker-container, remote, kubernetes
    image_store: str  # classic | containerd


@dataclass(frozen=True)
class Capability:
    name: str
    available: bool
    detail: str
    fix: str = ""


def version_tuple(text: str) -> tuple[int, ...]:
    """``v0.13.2-rc1`` / ``26.1.5+dfsg1`` -> (0, 13, 2) / (26, 1, 5); () when there is no version."""
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(x) for x in m.groups(default="0")) if m else ()


# The BuildKit each Docker engine release builds with (its `docker` driver). Used when the builder does
# not say: Debian's dockerd builds report `v0.0.0+unknown`. Newest first; (major, minor) of the engine.
ENGINE_BUILDKIT = (((28, 0), "v0.20"), ((27, 0), "v0.15"), ((26, 0), "v0.13"), ((25, 0), "v0.12"),
                   ((24, 0), "v0.11"), ((23, 0), "v0.10"), ((20, 10), "v0.8"))


def buildkit_version(reported: str, engine_version: str, driver: str) -> str:
    """The builder's BuildKit version: what it reports, or (docker driver, nothing usable reported) the one
    the engine release ships, marked ``(engine default)``."""
    if version_tuple(reported) > (0, 0, 0) or driver != "docker":
        return reported
    engine = version_tuple(engine_version)
    for release, bk in ENGINE_BUILDKIT:
        if engine[:2] >= release:
            return f"{bk} (Docker {release[0]}.{release[1]} default)"
    return reported


def image_store(driver_status: list[list[str]], storage_driver: str) -> str:
    """The engine's image store from `docker info`: containerd's snapshotter or the classic graph drivers."""
    types = {k: v for k, v in (pair for pair in driver_status if len(pair) == 2)}
    if "snapshotter" in types.get("driver-type", "") or storage_driver in ("overlayfs", "stargz", "zfs-snapshotter"):
        return CONTAINERD_STORE
    return CLASSIC_STORE


def capabilities(f: EngineFacts) -> list[Capability]:
    bk = version_tuple(f.buildkit_version)
    docker_driver = f.driver == "docker"
    containerd = f.image_store == CONTAINERD_STORE
    other_builder = ("a docker-container builder (docker buildx create --driver docker-container --use), or the "
                     "containerd image store (Docker 24+; docs/engines.md: The engine)")
    rows = [
        Capability("push by digest", not docker_driver,
                   f"driver {f.driver}" + ("" if not docker_driver else ": staging tags instead (works)"),
                   "" if not docker_driver else "a docker-container, remote or kubernetes builder pushes by digest"),
        Capability("multi-platform in one build", not docker_driver or containerd,
                   f"driver {f.driver}, {f.image_store} image store",
                   "" if not docker_driver or containerd else other_builder),
        Capability(CACHE_EXPORT, not docker_driver or containerd,
                   f"driver {f.driver}, {f.image_store} image store",
                   "" if not docker_driver or containerd else other_builder),
        Capability(ATTESTATIONS, bk >= (0, 11) and (not docker_driver or containerd),
                   f"BuildKit {f.buildkit_version or 'unknown'}, driver {f.driver}, {f.image_store} image store",
                   "" if bk >= (0, 11) and (not docker_driver or containerd) else
                   ("BuildKit 0.11+ (Docker 23+) and " if bk < (0, 11) else "") + other_builder),
        Capability(REWRITE, bk >= (0, 13),
                   f"BuildKit {f.buildkit_version or 'unknown'}" + (
                       "; the docker driver's exporter refuses it: OCI export pushed with skopeo instead"
                       if docker_driver and bk >= (0, 13) else ""),
                   "" if bk >= (0, 13) else "BuildKit 0.13+ (Docker 26+, or a docker-container builder)"),
        Capability(ANNOTATIONS, bk >= (0, 12) and (not docker_driver or containerd),
                   f"BuildKit {f.buildkit_version or 'unknown'}, driver {f.driver}, {f.image_store} image store",
                   "" if bk >= (0, 12) and (not docker_driver or containerd) else
                   ("BuildKit 0.12+ (Docker 25+) and " if bk < (0, 12) else "") + other_builder),
    ]
    return rows


class CapabilityError(CrossdockError):
    """A feature was asked for explicitly that the engine and builder in use cannot give."""


def require_cache_export(rows: list[Capability], *, cache: str) -> None:
    """The registry build cache asked for (``cache`` not off) on a builder that cannot export one: a
    ``CapabilityError`` naming the fix, before anything is built."""
    export = available(rows, CACHE_EXPORT)
    if cache != "off" and not export.available:
        raise CapabilityError(f"cache={cache}: this builder cannot export a build cache ({export.detail}). Fix: "
                              f"{export.fix}; or set cache to off")


def require_annotations(rows: list[Capability]) -> None:
    """The project declares annotations, which this builder cannot write: a ``CapabilityError`` before anything
    is built (labels, which every builder writes, are the alternative)."""
    can = available(rows, ANNOTATIONS)
    if not can.available:
        raise CapabilityError(f"the project's annotations cannot be written by this builder ({can.detail}). Fix: "
                              f"{can.fix}; or move them to labels")


def available(rows: list[Capability], name: str) -> Capability:
    return next(r for r in rows if r.name == name)


@dataclass(frozen=True)
class Features:
    """What a build will use, decided from the settings and the capabilities."""

    provenance: str  # max | min | off
    rewrite_timestamps: bool
    notes: tuple[str, ...] = ()


def decide(rows: list[Capability], *, provenance: str, reproducible: str) -> Features:
    """``auto`` takes what the engine can do (with a note where it cannot); an explicit ``max``/``min`` or
    ``on`` the engine cannot do is a ``CapabilityError`` naming the fix, before anything is built."""
    notes = []
    attest = available(rows, ATTESTATIONS)
    if provenance == "auto":
        provenance = "max" if attest.available else "off"
        if not attest.available:
            notes.append(f"provenance attestations: off ({attest.detail}; to get them: {attest.fix})")
    elif provenance != "off" and not attest.available:
        raise CapabilityError(f"provenance={provenance}: this engine cannot attach attestations ({attest.detail}). "
                              f"Fix: {attest.fix}; or set provenance to off or auto")
    rewrite = available(rows, REWRITE)
    if reproducible == "auto":
        on = rewrite.available
        if not on:
            notes.append(f"timestamp rewriting: off ({rewrite.detail}; to get it: {rewrite.fix}); the binaries are "
                         f"still built from SOURCE_DATE_EPOCH")
    elif reproducible == "on" and not rewrite.available:
        raise CapabilityError(f"reproducible=on: this builder cannot rewrite timestamps ({rewrite.detail}). "
                              f"Fix: {rewrite.fix}; or set reproducible to off or auto")
    else:
        on = reproducible == "on"
    return Features(provenance=provenance, rewrite_timestamps=on, notes=tuple(notes))
