"""The README is a front door that tells the truth: the two commands, links that resolve, a reference in
docs/ that the code generates (every setting) or that lists what exists (every platform)."""

from __future__ import annotations

import re

from tasks.core.platforms import PLATFORMS
from tasks.core.settings import KNOBS, SUITE_ROOT

README = (SUITE_ROOT / "README.md").read_text()
DOCS = SUITE_ROOT / "docs"


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 250
    for heading in ("## The two commands", "## Your own Rust project", "## The tasks", "## Layout"):
        assert heading in README


def test_the_two_commands_exist_and_ci_calls_the_test_command():
    assert "scripts/provision-local.sh && .venv/bin/inv -f local-world.yaml build --platforms=amd64,arm64,arm" in README
    assert "\nscripts/test.sh\n" in README
    assert "scripts/test.sh" in (SUITE_ROOT / ".ci" / "run").read_text()


def test_every_relative_link_in_the_readme_and_docs_resolves():
    for page in [SUITE_ROOT / "README.md", SUITE_ROOT / "benchmarks" / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"


def test_the_settings_reference_is_generated_from_the_knobs_and_current():
    import importlib.util

    script = SUITE_ROOT / "scripts" / "settings-reference.py"
    spec = importlib.util.spec_from_file_location("settings_reference", script)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    reference = (DOCS / "settings.md").read_text()
    assert generator.current() == reference, "docs/settings.md is out of date: run scripts/settings-reference.py"
    for knob in KNOBS:
        assert f"`{knob.env}`" in reference and f"`{knob.option}`" in reference, knob.name
    assert "| `build`, `release`, `setup` |" in reference  # the tasks come from their flags, e.g. builder-image


def test_every_platform_is_in_the_table():
    engines = (DOCS / "engines.md").read_text()
    for p in PLATFORMS:
        assert f"| `{p.name}` |" in engines and f"`{p.docker}`" in engines and f"`{p.rust_triple}`" in engines


def test_every_image_key_is_documented():
    from tasks.core.image import SPEC_KEYS

    image = (DOCS / "image.md").read_text()
    for key in SPEC_KEYS:
        assert f"`{key.replace('_', '-')}`" in image, key


def test_the_benchmarks_page_names_every_measurement_and_none_is_unfinished():
    page = (SUITE_ROOT / "benchmarks" / "README.md").read_text()
    for name in ("results.md", "fixed-cost.md", "fresh-runner.md", "image-sizes.md", "jobserver.md"):
        assert (SUITE_ROOT / "benchmarks" / name).is_file() and name in page, name
    assert "PARTIAL" not in (SUITE_ROOT / "benchmarks" / "results.md").read_text()
