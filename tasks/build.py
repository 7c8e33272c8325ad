"""`inv build`: cross-compile the project for every platform, push each arch, join one manifest list.

The task: its flags, then build steps (tasks/steps/build.py).
"""

from __future__ import annotations

from invoke import Context

from .common import settings_task
from .core.errors import CrossdockError
from .core.settings import Settings
from .engine.docker import Engine
from .steps.build import execute_build

BUILD_SETTINGS = ("platforms", "project", "bin", "package", "registry", "image", "tag", "output", "jobs",
                  "compile_slots", "compile_tokens", "joint_compile", "builder", "builder_image", "runtime_image",
                  "runtime", "build_packages", "build_tools", "runtime_packages", "cargo_profile", "port", "out_dir",
                  "provenance", "reproducible", "cache", "build_network", "ssh_known_hosts")


@settings_task(*BUILD_SETTINGS, flags={
    "no_cache": (False, "Ignore BuildKit's layer cache (cargo's cache mounts are kept): rebuild every step."),
    "join": (True, "Join the arches into the manifest list (default). --no-join: push the arches only and write the "
                   "report, for `inv merge` to join with arches built on other machines."),
})
def build(c: Context, settings: Settings, *, no_cache: bool = False, join: bool = True) -> None:
    """Cross-compile the Rust project for every platform and join the images into one manifest list."""
    result = execute_build(Engine(c, builder=settings.builder), settings, no_cache=no_cache, join=join)
    if result is not None and not result.ok:
        raise CrossdockError(f"build failed for {', '.join(result.failed)} (logs under {settings.out_dir / 'build'})")
