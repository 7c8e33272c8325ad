"""`inv merge`: join per-arch builds made on other machines (one CI job per architecture) into one
manifest list, as Docker documents for distributing a build across runners.

Each job runs `inv build --platforms=<arch> --no-join` and keeps its out/build-report.json; the merge job
checks the reports agree (same commit, repository, tag and image settings; every platform once, none
failed), joins their digests with `buildx imagetools create`, checks the joined index lists exactly them
and writes a merged build report that `inv smoke` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..common import say
from ..core.report import MergeError, MergePlan
from ..engine.docker import Engine


def read_report(path: str) -> tuple[str, dict]:
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or "platforms" not in data:
            raise ValueError("not a crossdock build report")
    except (OSError, ValueError) as e:
        raise MergeError(f"cannot read build report {path}: {e} (each job's out/build-report.json)") from None
    return path, data


def join(engine: Engine, plan: MergePlan, target: str) -> str:
    """The reports' digests joined under ``target`` (`buildx imagetools create`); the new index's digest,
    checked to list exactly them (another run may move the same tag meanwhile). '' under --dry."""
    say(f"joining {', '.join(p['platform'] for p in plan.platforms)} (commit {str(plan.base.get('revision'))[:7]}) "
        f"into {target}")
    digest, problem = engine.join(target, plan.repository, [p.get("pushed") or p["digest"] for p in plan.platforms],
                                  [p["digest"] for p in plan.platforms],
                                  [p["digest"] for p in plan.platforms if p.get("attestation")],
                                  annotations=tuple(((plan.base.get("image") or {}).get("annotations") or {}).items()))
    if problem:
        raise MergeError(f"{problem} (nothing else was tagged)")
    return digest


