"""The README documents what exists: every setting, every platform, the two commands."""

from __future__ import annotations

from tasks.core.platforms import PLATFORMS
from tasks.core.settings import KNOBS, SUITE_ROOT

README = (SUITE_ROOT / "README.md").read_text()


def test_every_setting_and_flag_is_documented():
    for knob in KNOBS:
        assert f"`{knob.env}`" in README, knob.env
        assert f"`{knob.option}`" in README, knob.name
        assert f"`{knob.default}`" in README or not knob.default or knob.name == "project", knob.name


def test_every_platform_is_in_the_table():
    for p in PLATFORMS:
        assert f"| `{p.name}` |" in README and f"`{p.docker}`" in README and f"`{p.rust_triple}`" in README


def test_the_two_commands_exist_and_ci_calls_the_test_command():
    assert "scripts/provision-local.sh && .venv/bin/inv -f local-world.yaml build --platforms=amd64,arm64,arm" in README
    assert "\nscripts/test.sh\n" in README
    assert "scripts/test.sh" in (SUITE_ROOT / ".ci" / "run").read_text()


def test_readme_shows_the_latest_benchmark_results():
    results = (SUITE_ROOT / "benchmarks" / "results.md").read_text().strip()
    assert "PARTIAL" not in results, "benchmarks/results.md is from an unfinished run"
    assert results in README, "README's Benchmarks section must show benchmarks/results.md as it is"


def test_readme_shows_the_latest_fixed_cost_measurement():
    fixed = (SUITE_ROOT / "benchmarks" / "fixed-cost.md").read_text().strip()
    assert fixed in README, "README's Fixed cost section must show benchmarks/fixed-cost.md as it is"


def test_readme_shows_the_latest_fresh_runner_measurement():
    fresh = (SUITE_ROOT / "benchmarks" / "fresh-runner.md").read_text().strip()
    assert fresh in README, "README's Fresh runner section must show benchmarks/fresh-runner.md as it is"


def test_readme_shows_the_latest_image_sizes():
    sizes = (SUITE_ROOT / "benchmarks" / "image-sizes.md").read_text().strip()
    assert sizes in README, "README's Runtime flavours section must show benchmarks/image-sizes.md as it is"


def test_readme_shows_the_latest_jobserver_measurement():
    table = (SUITE_ROOT / "benchmarks" / "jobserver.md").read_text().strip()
    assert table in README, "README's compile slots and jobserver section must show benchmarks/jobserver.md as it is"
