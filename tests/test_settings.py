from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.settings import DEFAULTS, EXAMPLE_PROJECT, KNOBS, SUITE_ROOT, SettingsError, parse_env_example, resolve


def test_defaults_apply_when_nothing_is_set(tmp_path):
    s = resolve(cwd=tmp_path)
    assert s.platforms == DEFAULTS["platforms"] and s.tag == "dev" and s.output == "push" and s.jobs == 0
    assert s.compile_slots == 1
    assert s.project == EXAMPLE_PROJECT
    assert s.out_dir == tmp_path / "out"


def test_precedence_defaults_config_env_cli(tmp_path):
    config = {"tag": "from-file", "image": "file-image", "registry": "file:5000"}
    environ = {"CROSSDOCK_TAG": "from-env", "CROSSDOCK_IMAGE": "env-image", "UNRELATED": "x"}
    cli = {"tag": "from-cli", "image": None}  # None: flag not given
    s = resolve(config=config, environ=environ, cli=cli, cwd=tmp_path)
    assert s.tag == "from-cli"  # cli > env > file
    assert s.image == "env-image"  # env > file
    assert s.registry == "file:5000"  # file > default
    assert s.builder_image == DEFAULTS["builder_image"]


def test_relative_paths_resolve_against_the_working_directory(tmp_path):
    s = resolve(cli={"project": "proj", "out_dir": "reports"}, cwd=tmp_path)
    assert (s.project, s.out_dir) == (tmp_path / "proj", tmp_path / "reports")


@pytest.mark.parametrize("cli, message", [
    ({"output": "tarball"}, "output must be 'push' or 'load'"),
    ({"jobs": "-1"}, "jobs must be a whole number"),
    ({"jobs": "many"}, "jobs must be a whole number"),
    ({"compile_slots": "-2"}, "compile_slots must be a whole number >= 0.*--compile-slots"),
    ({"compile_slots": "all"}, "compile_slots must be a whole number >= 0"),
    ({"smoke_timeout": "soon"}, "smoke_timeout must be a number of seconds"),
    ({"smoke_timeout": "0"}, "smoke_timeout must be a number of seconds"),
    ({"smoke_command": "'unclosed"}, "is not a usable argument list"),
    ({"smoke_command": ""}, "is not a usable argument list"),
])
def test_bad_values_are_refused_with_the_fix(cli, message, tmp_path):
    with pytest.raises(SettingsError, match=message):
        resolve(cli=cli, cwd=tmp_path)


def test_unknown_config_keys_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="unknown setting"):
        resolve(config={"platfroms": "arm64"}, cwd=tmp_path)


def test_env_example_lists_exactly_the_settings_with_their_defaults():
    text = (SUITE_ROOT / ".env.example").read_text()
    documented = parse_env_example(text)
    assert documented == {**{k.env: k.default for k in KNOBS}, "REGISTRY_USER": "", "REGISTRY_PASSWORD": ""}
    for k in KNOBS:  # every key has a comment line right above it
        lines = text.splitlines()
        i = lines.index(f"# {k.env}={k.default}")
        assert lines[i - 1].startswith("# ") and "=" not in lines[i - 1].split()[1]


def test_parse_env_example_reads_plain_and_commented_keys():
    text = "# a comment\nA=1\n# B=two words\n\n# not a key = prose\n"
    assert parse_env_example(text) == {"A": "1", "B": "two words"}


def test_local_world_config_names_only_known_settings():
    text = (SUITE_ROOT / "local-world.yaml").read_text()
    keys = [line.split(":")[0].strip() for line in text.splitlines() if line.startswith("  ") and ":" in line]
    assert keys and set(keys) <= {k.name for k in KNOBS}
    assert Path(SUITE_ROOT / "local-world.yaml").read_text().startswith("#")
