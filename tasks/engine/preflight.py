"""Checks a task runs before any work: emulators for the smoke tests, the base images' platforms."""

from __future__ import annotations

from ..core.platforms import Platform, PlatformError, lookup
from .docker import Engine
from .emulation import probe_handlers


def image_platforms(engine: Engine, image: str) -> tuple[list[str] | None, str]:
    entries, error = engine.image_index(image)
    if entries is None:
        return None, error
    return [e.platform for e in entries], "" if entries else "a single-platform image (no manifest list)"


def missing_platforms(offered: list[str], wanted: tuple[Platform, ...]) -> list[Platform]:
    """Platforms of ``wanted`` an image's index lacks (arm/v7 also matches a variant-less linux/arm)."""
    have = set()
    for name in offered:
        try:
            have.add(lookup(name).name)
        except PlatformError:
            continue
    return [p for p in wanted if p.name not in have]


def emulator_warning(platforms: tuple[Platform, ...]) -> list[str]:
    """For `inv build`: builds need no emulator, but the smoke tests will."""
    return [f"warning: {p} (the build itself does not need it; `inv smoke` will)" for p in probe_handlers(platforms)]


def base_image_problem(runtime_image: str, offered: list[str], platforms: tuple[Platform, ...]) -> str:
    """For `inv build`: the runtime image lacks a requested platform (checked before any build). ``offered``:
    the platforms its index lists (empty when unreadable or single-platform: the build then reports it)."""
    missing = missing_platforms(offered, platforms) if offered else []
    if not missing:
        return ""
    return (f"the runtime image {runtime_image} has no {', '.join(p.docker for p in missing)} "
            f"(it has {', '.join(offered)}): drop those platforms or choose another --runtime-image")
