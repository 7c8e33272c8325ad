"""benchmarks/run.py's joint-compile rows: the table and its ratio, the units counted from a build's logs, the
share of busy cores, and results.md keeping the section. Pure: no Docker."""

from __future__ import annotations

import json

from benchmarks.run import FIXED_COST_MARK, JOINT_MARK, CpuBusy, JointRow, build_units, joint_table, with_joint


def test_the_one_cargo_row_gives_its_ratio_to_the_per_platform_row_and_the_goal_on_derive():
    rows = {"derive": {
        "one cargo": JointRow(seconds=[150.0, 160.0, 155.0], busy=[0.95, 0.97, 0.96], stolen=[0.1, 0.0, 0.2],
                              host_units=[60] * 3, target_units=[120] * 3, no_change=[4.0, 5.0, 4.5]),
        "per-platform": JointRow(seconds=[200.0, 190.0, 210.0], busy=[0.9, 0.92, 0.91], host_units=[180] * 3,
                                 target_units=[120] * 3)},
        "heavy": {"one cargo": JointRow(seconds=[100.0], busy=[0.99], host_units=[0], target_units=[30]),
                  "per-platform": JointRow(seconds=[98.0], busy=[0.99], host_units=[0], target_units=[30, 31])}}
    text, data = joint_table(rows)
    lines = text.splitlines()
    assert lines[2].startswith("| derive | one cargo | 3 | 155.0 s | one cargo / per-platform 0.78 | <= 0.85 (met) | "
                               "150.0-160.0 s | 96% | 10% | 60 | 120 | 4.5 s |")
    assert lines[3].startswith("| derive | per-platform | 3 | 200.0 s |  |  | 190.0-210.0 s | 91% |  | 180 | 120 |")
    assert "| heavy | one cargo | 1 | 100.0 s | one cargo / per-platform 1.02 | no worse than the spread |" in lines[4]
    assert lines[5].endswith("| 0 | 30/31 | |")
    assert json.dumps(data) and data[0]["of_per_platform"] == round(155 / 200, 4)
    rows["derive"]["one cargo"].seconds = [180.0]
    assert "0.90 | <= 0.85 (missed)" in joint_table(rows)[0]


def test_units_are_added_over_every_log_of_a_build(tmp_path):
    (tmp_path / "joint.log").write_text(
        "#12 1.0 platform.sh: cook: compiled 40 unit(s) for the build machine (build scripts, proc-macros and their "
        "dependencies) and 90 for 3 target(s)\n#15 1.0 platform.sh: compiled 1 unit(s) for the build machine (build "
        "scripts, proc-macros and their dependencies) and 3 for 3 target(s)\n")
    (tmp_path / "amd64.log").write_text("#20 CACHED\n")
    assert build_units(tmp_path) == (41, 93)


def test_results_md_keeps_the_joint_section_before_the_fixed_cost_one():
    results = f"head\n\n| table |\n\n{FIXED_COST_MARK}\n\nfixed\n"
    once = with_joint(results, "joint v1")
    assert once.index("head") < once.index(JOINT_MARK) < once.index("joint v1") < once.index(FIXED_COST_MARK)
    again = with_joint(once, "joint v2")
    assert "joint v1" not in again and again.count(JOINT_MARK) == 1 and again.endswith("fixed\n")
    assert with_joint("head\n", "j").endswith(f"{JOINT_MARK}\n\nj\n")


def test_busy_cores_are_a_share_of_the_machine():
    with CpuBusy() as cpu:
        sum(i * i for i in range(200_000))
    assert 0.0 <= cpu.busy <= 1.0 and 0.0 <= cpu.stolen <= 1.0 and cpu.busy + cpu.stolen <= 1.0
