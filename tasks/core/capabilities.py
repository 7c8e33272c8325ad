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

CONTAINERD_STORE = "containerd"
CLASSIC_STORE = "classic"
NON_DOCKER_DRIVERS = ("docker-container", "remote", "kubernetes")


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
                     "containerd image store (Docker 24+; README: The engine)")
    rows = [
        Capability("push by digest", not docker_driver,
                   f"driver {f.driver}" + ("" if not docker_driver else ": staging tags instead (works)"),
                   "" if not docker_driver else "a docker-container, remote or kubernetes builder pushes by digest"),
        Capability("multi-platform in one build", not docker_driver or containerd,
                   f"driver {f.driver}, {f.image_store} image store",
                   "" if not docker_driver or containerd else other_builder),
        Capability("cache export (--cache-to)", not docker_driver or containerd,
                   f"driver {f.driver}, {f.image_store} image store",
                   "" if not docker_driver or containerd else other_builder),
        Capability("attestations (provenance)", bk >= (0, 11) and (not docker_driver or containerd),
                   f"BuildKit {f.buildkit_version or 'unknown'}, driver {f.driver}, {f.image_store} image store",
                   "" if bk >= (0, 11) and (not docker_driver or containerd) else
                   ("BuildKit 0.11+ (Docker 23+) and " if bk < (0, 11) else "") + other_builder),
        Capability("timestamp rewriting", bk >= (0, 13),
                   f"BuildKit {f.buildkit_version or 'unknown'}" + (
                       "; the docker driver's exporter refuses it: OCI export instead"
                       if docker_driver and bk >= (0, 13) else ""),
                   "" if bk >= (0, 13) else "BuildKit 0.13+ (Docker 26+, or a docker-container builder)"),
    ]
    return rows
