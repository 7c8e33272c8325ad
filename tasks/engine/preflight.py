"""Checks a task runs before any work: emulators for the smoke tests, the base images' platforms."""

from __future__ import annotations

from ..core.platforms import Platform, base_image_problem, missing_platforms  # noqa: F401 (callers' names)
from .docker import Engine
from .emulation import probe_handlers


def image_platforms(engine: Engine, image: str) -> tuple[list[str] | None, str]:
    entries, error = engine.image_index(image)
    if entries is None:
        return None, error
    return [e.platform for e in entries], "" if entries else "a single-platform image (no manifest list)"


def emulator_warning(platforms: tuple[Platform, ...]) -> list[str]:
    """For `inv build`: builds need no emulator, but the smoke tests will."""
    return [f"warning: {p} (the build itself does not need it; `inv smoke` will)" for p in probe_handlers(platforms)]
