"""`inv smoke`: prove every platform of a manifest list is the right binary and actually runs (QEMU).

The task: its flags, then smoke steps (tasks/steps/smoke.py).
"""

from __future__ import annotations

from invoke import Context

from .common import settings_task
from .core.checks import Expectations
from .core.settings import image_reference, parse_flag, platform_list
from .engine.docker import Engine
from .steps.smoke import SmokeError, last_build, run_smoke


@settings_task("health_path", "port", "jobs", "out_dir", "smoke_command", "smoke_expect", "smoke_timeout", flags={
    "image": (None, "Manifest list to test (registry/repo:tag or @digest). Default: what the last `inv build` "
                    "made."),
    "platforms": (None, "Platforms to test (default: every platform of the manifest list)."),
}, lazy=True)
def smoke(c: Context, load, image=None, platforms=None):
    """Check every platform of an image: metadata, ELF binary and glibc, shared libraries, a run under QEMU,
    the service."""
    settings = load(warn=image is not None)
    wanted = parse_flag("--platforms", platforms, platform_list) if platforms is not None else None
    recorded = Expectations()
    if image is None:  # settings read twice: said once, for the project the last build built
        try:
            image, recorded, project = last_build(settings.out_dir)
        except SmokeError:
            load()  # its warnings (a mistyped CROSSDOCK_OUT_DIR?) before the error
            raise
        settings = load(**({"project": str(project)} if project else {}))
    else:
        parse_flag("--image", image, image_reference)
    result = run_smoke(Engine(c), settings, image=image, expect=recorded, platforms=wanted)
    if not result.ok:
        details = "\n".join(f"  {r.label}: {c.name}: {c.detail}" for r in result.failed for c in r.failures)
        raise SmokeError(f"smoke test failed for {', '.join(r.label for r in result.failed)}:\n{details}")
