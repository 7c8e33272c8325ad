"""`inv smoke`: prove every platform of a manifest list is the right binary and actually runs (QEMU).

The task: its flags, then smoke steps (tasks/steps/smoke.py).
"""

from __future__ import annotations

from invoke import Context

from .common import crossdock_task, load_settings
from .core.checks import (
    Expectations,
)
from .core.settings import flag_help, image_reference, parse_flag, platform_list
from .engine.docker import Engine
from .steps.smoke import SmokeError, last_build, run_smoke


@crossdock_task(
    help={
        **flag_help("health_path", "port", "jobs", "out_dir", "smoke_command", "smoke_expect", "smoke_timeout"),
        "image": "Manifest list to test (registry/repo:tag or @digest). Default: what the last `inv build` made.",
        "platforms": "Platforms to test (default: every platform of the manifest list).",
    },
)
def smoke(c: Context, image=None, platforms=None, command=None, expect=None, health_path=None, port=None,
          timeout=None, jobs=None, out_dir=None):
    """Check every platform of an image: metadata, ELF binary and glibc, shared libraries, a run under QEMU,
    the service."""
    flags = dict(smoke_command=command, smoke_expect=expect, health_path=health_path, port=port,
                 smoke_timeout=timeout, jobs=jobs, out_dir=out_dir)
    settings = load_settings(c, warn=image is not None, **flags)
    wanted = parse_flag("--platforms", platforms, platform_list) if platforms is not None else None
    recorded = Expectations()
    if image is None:  # settings read twice: said once, for the project the last build built
        try:
            image, recorded, project = last_build(settings.out_dir)
        except SmokeError:
            load_settings(c, **flags)  # its warnings (a mistyped CROSSDOCK_OUT_DIR?) before the error
            raise
        settings = load_settings(c, **({"project": str(project)} if project else {}), **flags)
    else:
        parse_flag("--image", image, image_reference)
    result = run_smoke(Engine(c), settings, image=image, expect=recorded, platforms=wanted)
    if not result.ok:
        details = "\n".join(f"  {r.label}: {c.name}: {c.detail}" for r in result.failed for c in r.failures)
        raise SmokeError(f"smoke test failed for {', '.join(r.label for r in result.failed)}:\n{details}")
