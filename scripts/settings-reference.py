#!/usr/bin/env python3
"""Write docs/settings.md's table from KNOBS (tasks/core/settings.py) and the tasks' flags: every setting,
its flag, variable, default, the tasks that take it, its help. tests/test_readme.py checks it is current.

Usage: .venv/bin/python scripts/settings-reference.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks import ns  # noqa: E402
from tasks.core.settings import KNOBS, REFERENCE_END, REFERENCE_START, reference_table  # noqa: E402

DOC = ROOT / "docs" / "settings.md"


def tasks_of() -> dict[str, list[str]]:
    """setting -> the tasks whose flags include it (by the setting's own flag name)."""
    found: dict[str, list[str]] = {}
    for name in sorted(ns.task_names):
        task = ns[name]
        for knob in KNOBS:
            if knob.option.removeprefix("--") in (task.help or {}) and task.help[knob.option[2:]].startswith(
                    knob.help.split(".")[0]):
                found.setdefault(knob.name, []).append(name)
    return found


def current() -> str:
    text = DOC.read_text()
    start, end = text.index(REFERENCE_START), text.index(REFERENCE_END) + len(REFERENCE_END)
    return text[:start] + reference_table(tasks_of()) + text[end:]


if __name__ == "__main__":
    wanted = current()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if wanted == DOC.read_text() else f"{DOC} is out of date: run scripts/settings-reference.py")
    DOC.write_text(wanted)
