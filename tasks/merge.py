"""`inv merge`: join per-arch builds made on other machines (one CI job per architecture) into one

The task: its flags, then merge steps (tasks/steps/merge.py).
"""

from __future__ import annotations

import json
import time

from invoke import Context

from .common import say, settings_task
from .core.report import plan_merge
from .core.settings import Settings
from .engine.docker import Engine
from .steps.merge import join, read_report


@settings_task(
    "platforms", "builder", "out_dir", iterable=["report"],
    extend={"platforms": "The merge refuses a set that lacks one of them or has another."},
    flags={"report": (None, "A per-arch job's build report (out/build-report.json of `inv build --no-join`); give "
                            "--report once per job.")},
)
def merge(c: Context, settings: Settings, *, report: list[str] | None = None) -> None:
    """Join per-arch builds made on other machines into one manifest list (after checking they agree)."""
    t0 = time.monotonic()
    plan = plan_merge([read_report(path) for path in report or []], settings.platforms)
    engine = Engine(c, builder=settings.builder)
    target = f"{plan.repository}:{plan.tag}"
    digest = join(engine, plan, target)
    if engine.dry:
        return
    merged = {**plan.base, "ok": True, "manifest": {"reference": target, "digest": digest},
              "platforms": list(plan.platforms), "seconds": round(time.monotonic() - t0, 1),
              "merged_from": [path for path in report or []]}
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    path = settings.out_dir / "build-report.json"
    path.write_text(json.dumps(merged, indent=2) + "\n")
    say(f"manifest list {target}@{digest}")
    say(f"report: {path}")
