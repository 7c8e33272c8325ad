"""`inv` as a user runs it (invoke loads tasks.py): listing, help, --dry plans and early errors.

None of these needs a working engine: they run before any build (dry runs degrade to a warning).
"""

from __future__ import annotations

import re

import pytest

from tasks.core.settings import KNOBS
from tests.conftest import run_inv

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def build_lines(out: str) -> list[str]:
    """Each platform's ``docker buildx build`` (not the joint compile's, which comes first)."""
    return [line for line in out.splitlines() if line.startswith("docker buildx build ") and "joint-out" not in line]


def joint_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("docker buildx build ") and "joint-out" in line]


def test_invoke_loads_the_namespace_from_tasks_py():
    r = run_inv("--list")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\s+build\s", r.stdout, re.M)


def test_every_setting_has_a_documented_flag():
    helps = {name: run_inv(name, "--help") for name in ("build", "smoke", "release")}
    assert all(r.returncode == 0 for r in helps.values())
    text = "".join(r.stdout for r in helps.values())
    for knob in KNOBS:
        assert knob.env in text, knob.env
    flags = {k.name: k.option for k in KNOBS}
    for knob in KNOBS:
        assert flags.get(knob.name, "--" + knob.name.replace("_", "-")) in text, knob.name


def test_dry_build_prints_one_buildx_command_per_platform_and_the_imagetools_command():
    r = run_inv("--dry", "build", "--platforms=arm64,arm", "--tag=drytag", env=NO_ENGINE)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = build_lines(r.stdout)
    assert [re.search(r"--platform (\S+)", line).group(1) for line in lines] == ["linux/arm64", "linux/arm/v7"]
    # one cargo for both first, printed before them; each platform's build then takes its binary from it
    (joint,) = joint_lines(r.stdout)
    assert r.stdout.index(joint) < r.stdout.index(lines[0]) and "'TARGETS=arm64 arm/v7'" in joint
    assert all("COMPILE=joint" in line for line in lines)
    off = run_inv("--dry", "build", "--platforms=arm64,arm", "--joint-compile=off", env=NO_ENGINE)
    assert not joint_lines(off.stdout) and len(build_lines(off.stdout)) == 2, off.stdout + off.stderr
    joins = [line for line in r.stdout.splitlines() if line.startswith("docker buildx imagetools create ")]
    assert len(joins) == 1 and ":drytag " in joins[0]
    assert "<digest of linux/arm64>" in joins[0] and "<digest of linux/arm/v7>" in joins[0]
    assert "build started" not in r.stdout  # nothing ran


def test_dry_build_with_the_registry_cache_names_one_cache_per_arch():
    r = run_inv("--dry", "build", "--platforms=arm64,arm", "--cache=on", "--image=team/app", env=NO_ENGINE)
    assert r.returncode == 0, r.stdout + r.stderr
    for line, suffix in zip(build_lines(r.stdout), ("arm64", "armv7"), strict=True):
        ref = f"127.0.0.1:5000/team/app:buildcache-{suffix}"
        assert f"--cache-from type=registry,ref={ref} " in line
        assert f"--cache-to type=registry,ref={ref},mode=max,compression=zstd " in line
    (joint,) = joint_lines(r.stdout)  # reads both caches, writes none (the platforms' builds write them)
    assert joint.count("--cache-from type=registry,ref=127.0.0.1:5000/team/app:buildcache-") == 2
    assert "--cache-to" not in joint
    r = run_inv("--dry", "build", "--platforms=arm64", "--cache=ci/cache", env=NO_ENGINE)
    assert "ref=127.0.0.1:5000/ci/cache:buildcache-arm64," in r.stdout, r.stdout + r.stderr


def test_aliases_and_duplicates_collapse_to_one_build():
    r = run_inv("--dry", "build", "--platforms=arm,arm/v7,armv7,armhf", env=NO_ENGINE)
    assert r.returncode == 0, r.stderr
    assert len(build_lines(r.stdout)) == 1


@pytest.mark.parametrize("spec, message", [
    ("arm65", "unknown platform 'arm65'"),
    ("amd64,arm65", "unknown platform 'arm65'"),
    ("", "no platform requested"),
])
def test_bad_platforms_fail_before_anything_runs(spec, message):
    # With no engine at all, the platform error must still be the one reported: it is checked first.
    r = run_inv("build", f"--platforms={spec}", env=NO_ENGINE)
    assert r.returncode == 1
    assert message in r.stderr and "arm/v7" in r.stderr and "riscv64" in r.stderr
    assert "Docker engine" not in r.stderr and "Traceback" not in r.stderr


def test_project_without_cargo_toml(tmp_path):
    r = run_inv("build", f"--project={tmp_path}", env=NO_ENGINE)
    assert r.returncode == 1 and "has no Cargo.toml" in r.stderr and "Traceback" not in r.stderr


def test_binary_the_project_does_not_build():
    r = run_inv("build", "--bin=nope", env=NO_ENGINE)
    assert r.returncode == 1
    assert "builds no binary named 'nope'" in r.stderr and "hello-crossdock" in r.stderr


def test_no_engine_is_a_one_line_error():
    r = run_inv("build", "--platforms=amd64", env=NO_ENGINE)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "cannot reach the Docker engine" in errors[0] and "start dockerd" in errors[0]


def test_precedence_through_inv(tmp_path):
    config = tmp_path / "crossdock.yaml"
    config.write_text("crossdock:\n  tag: from-file\n  image: file-image\n  registry: file.example:5000\n")
    env = {**NO_ENGINE, "CROSSDOCK_TAG": "from-env", "CROSSDOCK_IMAGE": "env-image"}
    r = run_inv("-f", str(config), "--dry", "build", "--platforms=amd64", "--tag=from-cli", env=env)
    assert r.returncode == 0, r.stderr
    (line,) = build_lines(r.stdout)
    assert "file.example:5000/env-image:staging-from-cli-amd64" in line


def test_cargo_metadata_through_inv_sits_below_the_config_file(tmp_path):
    import shutil

    from tests.conftest import EXAMPLE

    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target"))
    manifest = project / "Cargo.toml"
    manifest.write_text(manifest.read_text() + 'tag = "from-metadata"\nbuild-packages = ["libssl-dev"]\n'
                        'runtime = "minimal"\n')
    r = run_inv("--dry", "build", "--platforms=amd64", f"--project={project}", env=NO_ENGINE)
    assert r.returncode == 0, r.stderr
    (line,) = build_lines(r.stdout)
    assert ":staging-from-metadata-amd64" in line and "BUILD_PACKAGES=libssl-dev" in line and "RUNTIME=minimal" in line
    config = tmp_path / "c.yaml"
    config.write_text("crossdock:\n  tag: from-file\n")
    r = run_inv("-f", str(config), "--dry", "build", "--platforms=amd64", f"--project={project}", env=NO_ENGINE)
    (line,) = build_lines(r.stdout)
    assert ":staging-from-file-amd64" in line and "RUNTIME=minimal" in line


def test_an_unknown_cargo_metadata_key_is_refused_before_any_build_with_the_nearest_name(tmp_path):
    import shutil

    from tests.conftest import EXAMPLE

    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target"))
    manifest = project / "Cargo.toml"
    manifest.write_text(manifest.read_text() + 'helth-path = "/x"\nworkdri = "/"\n')
    r = run_inv("--dry", "build", "--platforms=amd64", f"--project={project}", env=NO_ENGINE)
    assert r.returncode == 1 and not build_lines(r.stdout)
    # the warning other tasks give, and the build's refusal
    assert "key helth-path is not a setting or image key (did you mean health-path?): `inv build` refuses it" \
        in r.stdout
    assert "helth-path (did you mean health-path?), workdri (did you mean workdir?)" in r.stderr


def test_every_task_answers_help():
    for name in ("build", "merge", "smoke", "setup", "release", "verify"):
        r = run_inv(name, "--help")
        assert r.returncode == 0 and "--" in r.stdout, (name, r.stdout, r.stderr)
    assert "--key" in run_inv("verify", "--help").stdout


def test_task_flags_are_the_settings_declared_once():
    """build's flags, their help and their defaults come from KNOBS (settings_task), with its own two."""
    import importlib
    import inspect

    from tasks.core.settings import BY_NAME, HELP

    module = importlib.import_module("tasks.build")
    task = module.build
    params = inspect.signature(task.body).parameters
    for name in module.BUILD_SETTINGS:
        flag = BY_NAME[name].option.removeprefix("--")
        assert task.help[flag] == HELP[name] and params[flag.replace("-", "_")].default is None, name
    assert params["join"].default is True and params["no_cache"].default is False
    assert set(task.help) == {BY_NAME[n].option.removeprefix("--") for n in module.BUILD_SETTINGS} | {"join",
                                                                                                     "no-cache"}


def test_builder_and_runtime_of_different_debian_releases_are_refused_before_anything(tmp_path):
    r = run_inv("--dry", "build", "--platforms=amd64", "--builder-image=docker.io/library/rust:1-bookworm",
                "--runtime-image=docker.io/library/debian:trixie-slim", env=NO_ENGINE)
    assert r.returncode == 1 and not build_lines(r.stdout)
    assert "is Debian bookworm but the runtime image docker.io/library/debian:trixie-slim is Debian trixie" in r.stderr
