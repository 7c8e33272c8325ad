"""benchmarks/run.py's fixed-cost table and its place in results.md. Pure: no Docker."""

from __future__ import annotations

from benchmarks.run import FIXED_COST_MARK, Row, with_fixed_cost, write_fixed_cost

INFO = {"date": "2026-11-29 05:00 UTC", "cores": 2, "machine": "x86_64", "engine": "26.1.5"}


def row(*seconds: float) -> Row:
    return Row(seconds=list(seconds))


def test_the_table_says_which_goal_is_met_and_results_md_carries_it_once(tmp_path):
    (tmp_path / "results.md").write_text("Measured earlier.\n\n| workload | measurement |\n")
    rows = {"inv build amd64,arm64, no change": row(4.0, 4.2, 4.1),
            "same commands from sh, no change": row(4.0, 3.9, 4.0),
            "inv --dry build": row(0.31, 0.29, 0.33),
            "floor: python -m invoke --version": row(0.18, 0.17, 0.19)}
    text = write_fixed_cost(tmp_path, INFO, rows)
    assert "| inv build amd64,arm64, no change | 4.10 s | inv / sh 1.02 | <= 1.10 | yes |" in text
    assert "| inv --dry build | 0.31 s | 0.31 s | <= 0.30 s | no |" in text
    assert "crossdock's own part: 0.13 s" in text and "0.29-0.33 s" in text and "3 in each" in text
    assert (tmp_path / "fixed-cost.md").read_text().strip() == text
    results = (tmp_path / "results.md").read_text()
    assert results.startswith("Measured earlier.\n\n| workload | measurement |") and text in results
    rows["inv --dry build"] = row(0.25, 0.26, 0.27)
    again = write_fixed_cost(tmp_path, INFO, rows)
    results = (tmp_path / "results.md").read_text()
    assert results.count(FIXED_COST_MARK) == 1 and again in results and text not in results
    assert with_fixed_cost(results, again) == results
