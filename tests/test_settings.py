from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.core.platforms import parse_platforms
from tasks.core.settings import (
    DEFAULTS,
    EXAMPLE_PROJECT,
    KNOBS,
    OTHER_ENV,
    SUITE_ROOT,
    SettingsError,
    parse_env_example,
    resolve,
    unknown_names,
)


def test_defaults_apply_when_nothing_is_set(tmp_path):
    s = resolve(cwd=tmp_path)
    assert s.platforms == parse_platforms(DEFAULTS["platforms"]) and s.tag == "dev" and s.output == "push"
    assert s.jobs == 0 and s.port == 8080 and s.smoke_timeout == 180.0 and s.smoke_command == ("--version",)
    assert s.compile_slots == 1 and s.compile_tokens == "auto"
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


# Every setting with a bad value: the one line names the setting, the value, where it is set and what
# would be accepted.
BAD_VALUES = [
    ("project", "", None),  # empty is fine (the example); checked for Cargo.toml by the task
    ("bin", "my bin", "letters, digits, '_' and '-'"),
    ("package", "no-such-package", None),  # any name parses; the task refuses it against Cargo.toml
    ("platforms", "arm65", "unknown platform 'arm65'. Supported platforms: amd64, arm64, arm/v7"),
    ("platforms", "", "no platform requested"),
    ("registry", "bad:host:name", r"host\[:port\]"),
    ("registry", "https://ghcr.io", r"host\[:port\]"),
    ("image", "UPPER/Case", "lowercase letters and digits"),
    ("image", "app:1.0", "without tag or digest"),
    ("image", "a,,b", "separated by single commas"),
    ("tag", "bad:tag", "up to 128 letters"),
    ("tag", "-dash", "up to 128 letters"),
    ("tag", "x" * 129, "up to 128 letters"),
    ("output", "tarball", "'push' or 'load'"),
    ("jobs", "-1", "a whole number >= 0"),
    ("jobs", "many", "a whole number >= 0"),
    ("compile_slots", "-2", "a whole number >= 0"),
    ("compile_slots", "all", "a whole number >= 0"),
    ("compile_tokens", "-1", "0: no jobserver"),
    ("compile_tokens", "all", "or auto"),
    ("builder", "my builder", "buildx builder name"),
    ("builder_image", "Rust:1", "repository in lowercase"),
    ("runtime_image", "debian:bookworm:slim", "repository in lowercase"),
    ("cargo_profile", "", "a cargo profile name"),
    ("cargo_profile", "rel ease", "letters, digits"),
    ("port", "0", "from 1 to 65535"),
    ("port", "http", "from 1 to 65535"),
    ("port", "70000", "from 1 to 65535"),
    ("out_dir", " ", "a directory path"),
    ("runtime", "distroless", "'slim' or 'minimal' or 'static'"),
    ("build_packages", "libssl-dev:arm64", "Debian package names"),
    ("build_tools", "Cmake", "Debian package names"),
    ("runtime_packages", "libssl3=3.0", "Debian package names"),
    ("smoke_expect", "{Version}", "placeholders"),
    ("smoke_command", "'unclosed", "shell-quoted argument list"),
    ("smoke_command", "", "at least one argument"),
    ("health_path", "healthz", "starting with '/'"),
    ("smoke_timeout", "soon", "a number of seconds > 0"),
    ("smoke_timeout", "0", "a number of seconds > 0"),
    ("smoke_timeout", "inf", "a number of seconds > 0"),
    ("sign_key", "ftp://keys/cosign.key", "a cosign private key file"),
    ("provenance", "full", "'auto' or 'max' or 'min' or 'off'"),
    ("cache", "Team/Cache", "off, on .* or the repository to keep it in"),
    ("cache", "app:latest", "off, on .* or the repository to keep it in"),
    ("cache", "read:", "off, on .* read or read:<repository>"),
    ("build_network", "bridge", "'default' or 'host'"),
    ("joint_compile", "sometimes", "'auto' or 'off'"),
    ("ssh_known_hosts", " ", "a file path"),
    ("reproducible", "yes", "'auto' or 'on' or 'off'"),
]


@pytest.mark.parametrize("name, value, accepted", [b for b in BAD_VALUES if b[2]])
def test_bad_values_are_refused_naming_setting_value_and_what_is_accepted(name, value, accepted, tmp_path):
    knob = next(k for k in KNOBS if k.name == name)
    with pytest.raises(SettingsError) as e:
        resolve(cli={name: value}, cwd=tmp_path)
    first = str(e.value).splitlines()[0]
    assert first.startswith(f"{name} {value!r} is not valid ({knob.option} or {knob.env}): ")
    assert re.search(accepted, first), first


def test_bad_values_are_caught_from_every_layer(tmp_path):
    for layer in ({"config": {"jobs": "x"}}, {"environ": {"CROSSDOCK_JOBS": "x"}}, {"cli": {"jobs": "x"}}):
        with pytest.raises(SettingsError, match=r"jobs 'x' is not valid \(--jobs or CROSSDOCK_JOBS\)"):
            resolve(cwd=tmp_path, **layer)


def test_every_setting_has_a_bad_value_test():
    assert {k.name for k in KNOBS} == {b[0] for b in BAD_VALUES}


def test_valid_references_pass(tmp_path):
    s = resolve(cli={"registry": "[::1]:5000", "image": "team/app-x,other__name", "tag": "v1.2.3_b",
                     "builder_image": "127.0.0.1:5000/crossdock/debian:bookworm@sha256:" + "a" * 64,
                     "runtime_image": "debian", "port": "443", "smoke_command": "serve --check 'a b'"},
                cwd=tmp_path)
    assert s.port == 443 and s.smoke_command == ("serve", "--check", "a b")
    assert resolve(cli={"registry": "", "image": "ghcr.io/me/app"}, cwd=tmp_path).image == "ghcr.io/me/app"


def test_unknown_config_keys_and_variables_are_warned_with_the_closest_name(tmp_path):
    s = resolve(config={"platfroms": "arm64"}, cwd=tmp_path)  # ignored, not an error
    assert s.platforms == parse_platforms(DEFAULTS["platforms"])
    warnings = unknown_names(config={"platfroms": "arm64"},
                             environ={"CROSSDOCK_PLATFROMS": "x", "CROSSDOCK_STATE": "/s", "OTHER": "y"})
    assert warnings == [
        "warning: config key crossdock.platfroms is not a setting and is ignored (did you mean platforms?)",
        "warning: CROSSDOCK_PLATFROMS is not a crossdock setting and is ignored (did you mean CROSSDOCK_PLATFORMS?)",
    ]


def test_provisioning_variables_are_known():
    """Every CROSSDOCK_* name the scripts read is a setting or listed as one of theirs (no false warnings)."""
    used = set()
    for script in (SUITE_ROOT / "scripts").glob("*.sh"):
        used |= set(re.findall(r"CROSSDOCK_[A-Z_]+", script.read_text()))
    assert used <= {k.env for k in KNOBS} | set(OTHER_ENV), used - {k.env for k in KNOBS} - set(OTHER_ENV)


def test_env_example_lists_exactly_the_settings_with_their_defaults():
    text = (SUITE_ROOT / ".env.example").read_text()
    documented = parse_env_example(text)
    assert documented == {**{k.env: k.default for k in KNOBS}, "REGISTRY_USER": "", "REGISTRY_PASSWORD": "",
                          "COSIGN_PASSWORD": "", "CARGO_REGISTRIES_MY_CORP_TOKEN": "",
                          "CROSSDOCK_GIT_CREDENTIALS": ""}
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


def test_cargo_metadata_sits_between_defaults_and_the_config_file(tmp_path):
    meta = {"health-path": "/ready", "tag": "from-meta", "runtime-packages": ["libssl3", "ca-certificates"],
            "port": 9000, "project": "/elsewhere"}
    s = resolve(metadata=meta, cwd=tmp_path)
    assert (s.health_path, s.tag, s.port) == ("/ready", "from-meta", 9000)
    assert s.runtime_packages == ("libssl3", "ca-certificates")
    assert s.project == EXAMPLE_PROJECT  # metadata cannot move the project
    s = resolve(metadata=meta, config={"tag": "from-file"}, environ={"CROSSDOCK_PORT": "9100"}, cwd=tmp_path)
    assert (s.tag, s.port, s.health_path) == ("from-file", 9100, "/ready")
    with pytest.raises(SettingsError, match=r"runtime_packages 'libssl3,Bad' is not valid"):
        resolve(metadata={"runtime-packages": ["libssl3", "Bad"]}, cwd=tmp_path)
    warnings = unknown_names(metadata={"helth-path": "/x", "project": "."}, manifest="/p/Cargo.toml")
    assert "key helth-path is not a setting or image key (did you mean health-path?): `inv build` refuses it" \
        in warnings[0]
    assert "cannot set project" in warnings[1]


def test_project_metadata_is_read_from_the_workspace_the_root_package_and_the_member(tmp_path):
    from tasks.core.project import crossdock_metadata

    (tmp_path / "Cargo.toml").write_text(
        '[workspace]\nmembers = ["crates/*"]\n[workspace.metadata.crossdock]\nport = 1\ntag = "ws"\n')
    member = tmp_path / "crates" / "app"
    member.mkdir(parents=True)
    (member / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\n'
                                       '[package.metadata.crossdock]\ntag = "app"\n')
    assert crossdock_metadata(tmp_path) == {"port": 1, "tag": "ws"}
    assert crossdock_metadata(tmp_path, package="app") == {"port": 1, "tag": "app"}
    assert crossdock_metadata(tmp_path / "nowhere") == {}
    assert crossdock_metadata(EXAMPLE_PROJECT)["health-path"] == "/healthz"


def test_cache_is_off_by_default_and_takes_on_or_a_repository(tmp_path):
    assert resolve(cwd=tmp_path).cache == "off"
    assert resolve(environ={"CROSSDOCK_CACHE": "on"}, cwd=tmp_path).cache == "on"
    assert resolve(cli={"cache": "team/app-cache"}, cwd=tmp_path).cache == "team/app-cache"
    assert resolve(cli={"cache": "ghcr.io/team/app-cache"}, cwd=tmp_path).cache == "ghcr.io/team/app-cache"
    assert resolve(cli={"cache": "read"}, cwd=tmp_path).cache == "read"
    assert resolve(cli={"cache": "read:team/c"}, cwd=tmp_path).cache == "read:team/c"


@pytest.mark.parametrize("value, parsed", [("0", "0"), ("auto", "auto"), ("4", "4"), ("04", "4")])
def test_compile_tokens_are_off_auto_or_a_count(value, parsed, tmp_path):
    assert resolve(cli={"compile_tokens": value}, cwd=tmp_path).compile_tokens == parsed
