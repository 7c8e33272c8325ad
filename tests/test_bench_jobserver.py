"""benchmarks/run.py's jobserver rows: reading an arch's compile time and waits from its log, the table, and
cold copies of a workload with vendored crates. Pure: no Docker."""

from __future__ import annotations

import json

import pytest

from benchmarks.real_crates import LTO_PROFILE, lto_workspace
from benchmarks.run import ModeRow, arch_compile_seconds, cold_copy, jobserver_table

LOG = """#12 [cook 2/5] RUN crossdock-platform cook
#12 0.3 platform.sh: waited 4.5s for a compile token (2 in all)
#12 DONE 30.5s
#14 [cook 4/5] RUN crossdock-platform cook
#14 0.3 platform.sh: waited 0.0s for a compile token (2 in all)
#14 DONE 10.0s
#20 [build 3/3] RUN crossdock-platform build
#20 0.2 platform.sh: got compile slot 0 after 2.5s
#20 0.2 platform.sh: waited 2.5s for a compile slot (1 in all)
#20 DONE 12.0s
#21 [rootfs 2/2] RUN crossdock-platform rootfs
#21 DONE 3.0s
"""


def test_an_archs_compile_time_is_its_cargo_steps_less_its_waits():
    own, waited = arch_compile_seconds(LOG)
    assert waited == 7.0
    assert own == 30.5 + 10.0 + 12.0 - 7.0  # the rootfs step is no compile
    assert arch_compile_seconds("#5 [build 3/3] RUN crossdock-platform build\n#5 CACHED\n") == (0.0, 0.0)


def test_the_table_sets_the_jobserver_against_the_better_slot_mode():
    rows = {"heavy": {
        "1 slot": ModeRow(seconds=[100.0, 110.0, 90.0], compile={"amd64": [30.0]}, waited={"amd64": [60.0]}),
        "no limit": ModeRow(seconds=[120.0], compile={"amd64": [80.0]}, waited={"amd64": [0.0]}),
        "jobserver": ModeRow(seconds=[85.0], compile={"amd64": [50.0]}, waited={"amd64": [5.0]}),
    }}
    text, data = jobserver_table(rows)
    lines = text.splitlines()
    assert lines[2].startswith("| heavy | 1 slot | 3 | 100.0 s | 1.00 |")
    assert "| heavy | no limit | 1 | 120.0 s | 1.20 |" in lines[3]
    assert "| heavy | jobserver | 1 | 85.0 s | 0.85 | <= 0.90 (met) | amd64 50.0 s | amd64 5.0 s |" in lines[4]
    assert json.dumps(data)  # written as it is to jobserver.json
    rows["heavy"]["jobserver"].seconds = [95.0]
    assert "0.95 | <= 0.90 (missed)" in jobserver_table(rows)[0]


@pytest.mark.spawns  # git init of the copy
def test_a_cold_copy_names_itself_in_sources_and_manifests_but_leaves_vendored_crates(tmp_path):
    source = tmp_path / "src"
    (source / "src").mkdir(parents=True)
    (source / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    (source / "src" / "main.rs").write_text("fn main() {}\n")
    (source / "vendor" / "dep-1.0.0" / "src").mkdir(parents=True)
    (source / "vendor" / "dep-1.0.0" / "src" / "lib.rs").write_text("pub fn f() {}\n")
    (source / "vendor" / "dep-1.0.0" / "Cargo.toml").write_text('[package]\nname = "dep"\n')
    (source / "target").mkdir()
    one, two = cold_copy(source, tmp_path), cold_copy(source, tmp_path)
    assert one != two and not (one / "target").exists() and (one / ".git").is_dir()
    assert (one / "src" / "main.rs").read_text() == f"fn main() {{}}\n// {one.name}\n"
    assert (one / "Cargo.toml").read_text().endswith(f"# {one.name}\n")
    assert (one / "vendor" / "dep-1.0.0" / "src" / "lib.rs").read_text() == "pub fn f() {}\n"
    assert (one / "vendor" / "dep-1.0.0" / "Cargo.toml").read_text() == '[package]\nname = "dep"\n'


def test_the_lto_workload_has_the_real_world_release_profile(tmp_path):
    root = lto_workspace(tmp_path / "lto", items=1)
    manifest = (root / "Cargo.toml").read_text()
    assert "[profile.release]\n" + LTO_PROFILE in manifest and "strip = true" in manifest
