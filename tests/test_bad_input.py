"""Bad input through `inv`, as a user types it: every task, every setting (and every task-only flag).

Each case must exit 1 before any work, with a line naming the setting (or flag), the bad value and what
would be accepted; no traceback; nothing built (no output directory, no build started). The real-tier test
at the end also checks that the registry is left exactly as it was.
"""

from __future__ import annotations

import inspect
import os
import re

import pytest

from tasks import ns
from tasks.core.settings import KNOBS, SettingsError, resolve
from tests.conftest import LOCAL_WORLD, REGISTRY, registry_get, run_inv
from tests.test_settings import BAD_VALUES

TASKS = {name: ns.tasks[name] for name in ("build", "merge", "smoke", "setup", "release")}
FLAG_OF = {"smoke_command": "command", "smoke_timeout": "timeout", "smoke_expect": "expect"}  # smoke's flags
# Settings a task does not read from disk: a well-formed but wrong value cannot be noticed there.
UNUSED = {("smoke", "package"), ("setup", "package")}
# smoke's --image and --platforms name the image under test, not these settings (tested further below).
NOT_SETTINGS = {("smoke", "image"), ("smoke", "platforms")}


def task_flags(name: str) -> set[str]:
    return set(list(inspect.signature(TASKS[name].body).parameters)[1:])


def first_bad_value(setting: str) -> tuple[str, str]:
    """The first value of the settings test's table that the parser refuses, and what it accepts."""
    return next(((v, a) for s, v, a in BAD_VALUES if s == setting and a), ("", ""))


def cases():
    for task_name in TASKS:
        flags = task_flags(task_name)
        for knob in KNOBS:
            if (task_name, knob.name) in UNUSED:
                continue
            value, accepted = first_bad_value(knob.name)
            if not accepted:
                continue
            flag = FLAG_OF.get(knob.name, knob.name) if task_name == "smoke" else knob.name
            as_flag = flag in flags and (task_name, knob.name) not in NOT_SETTINGS
            yield pytest.param(task_name, knob.name, value, accepted, as_flag,
                               id=f"{task_name}-{knob.name}")


def check_refused(r, tmp_path, *names: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out, out
    assert not (tmp_path / "out").exists(), "the task wrote output before refusing its input"
    assert "build started" not in out and "smoke-testing" not in out
    lines = [line for line in r.stderr.splitlines() if all(n in line for n in names)]
    assert lines, f"no line names {names}: {r.stderr}"


@pytest.mark.parametrize("task_name, setting, value, accepted, as_flag", list(cases()))
def test_every_task_refuses_every_bad_setting(task_name, setting, value, accepted, as_flag, tmp_path):
    knob = next(k for k in KNOBS if k.name == setting)
    env = {"CROSSDOCK_OUT_DIR": str(tmp_path / "out")} if setting != "out_dir" else {}
    args = [task_name]
    if as_flag:
        flag = FLAG_OF.get(setting, setting) if task_name == "smoke" else setting
        args.append(f"--{flag.replace('_', '-')}={value}")
    else:
        env[knob.env] = value
    r = run_inv(*args, env=env, cwd=tmp_path)
    check_refused(r, tmp_path, setting, repr(value))
    line = next(line for line in r.stderr.splitlines() if setting in line and repr(value) in line)
    assert re.search(accepted, line), line


@pytest.mark.parametrize("args, env, names", [
    (["release", "--tag-prefix=v 1"], {}, ("--tag-prefix", "'v 1'", "letters, digits")),
    (["release", "--promote-from=/nonexistent/1.0.0.json"], {}, ("cannot read release record", "out/releases")),
    (["release", "--jobs=-1"], {}, ("jobs", "'-1'", "whole number >= 0")),
    (["smoke", "--image=team/Case:1"], {}, ("--image", "'team/Case:1'", "repository in lowercase")),
    (["smoke", "--platforms=arm65"], {}, ("--platforms", "'arm65'", "Supported platforms: amd64")),
    (["build", "--package=no-such-package"], {}, ("no package 'no-such-package'", "packages: hello-crossdock")),
    (["release"], {"CROSSDOCK_PACKAGE": "no-such-package"}, ("no package 'no-such-package'",)),
    (["build", "--project=/nonexistent"], {}, ("/nonexistent does not exist", "--project")),
    (["merge"], {}, ("no build reports given", "--report")),
    (["merge", "--report=/nonexistent/build-report.json"], {}, ("cannot read build report", "/nonexistent")),
    (["release", "--project=/nonexistent"], {}, ("/nonexistent does not exist", "--project")),
])
def test_task_only_flags_and_project_settings_are_refused(args, env, names, tmp_path):
    r = run_inv(*args, env={"CROSSDOCK_OUT_DIR": str(tmp_path / "out"), "DOCKER_HOST": "unix:///nonexistent.sock",
                            **env}, cwd=tmp_path)
    check_refused(r, tmp_path, *names)


def test_mistyped_variable_and_config_key_are_warned_with_the_closest_name(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("crossdock:\n  platfroms: arm64\n")
    r = run_inv("-f", str(config), "--dry", "build", "--platforms=amd64",
                env={"CROSSDOCK_TAGG": "x", "DOCKER_HOST": "unix:///nonexistent.sock"}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning: CROSSDOCK_TAGG is not a crossdock setting and is ignored (did you mean CROSSDOCK_TAG?)" in r.stdout
    assert "config key crossdock.platfroms is not a setting and is ignored (did you mean platforms?)" in r.stdout


def test_every_setting_is_covered_for_every_task():
    covered = {(p.values[0], p.values[1]) for p in cases()}
    for task_name in TASKS:
        for knob in KNOBS:
            if knob.name in ("project", "package"):
                continue  # well-formed values: refused against the disk (test above)
            assert (task_name, knob.name) in covered, (task_name, knob.name)
    with pytest.raises(SettingsError):  # and the table's values really are bad
        resolve(cli={"tag": first_bad_value("tag")[0]})


def _registry_state() -> dict[str, list[str]]:
    import json

    status, _, body = registry_get("/v2/_catalog?n=1000")
    assert status == 200
    state = {}
    for repo in json.loads(body).get("repositories") or []:
        _, _, tags = registry_get(f"/v2/{repo}/tags/list")
        state[repo] = sorted(json.loads(tags).get("tags") or [])
    return state


@pytest.mark.real
def test_bad_input_leaves_the_registry_exactly_as_it_was(engine, tmp_path):
    """The examples from the issue, with a working engine and registry: nothing is built, pushed or tagged."""
    before = _registry_state()
    env = {"CROSSDOCK_OUT_DIR": str(tmp_path / "out"), "REGISTRY_USER": "", **(
        {} if "REGISTRY_PASSWORD" not in os.environ else {"REGISTRY_PASSWORD": ""})}
    for args in (["build", "--tag=bad:tag"], ["build", "--image=UPPER/Case"], ["build", "--registry=bad:host:name"],
                 ["release", "--jobs=-1"], ["build", "--platforms=amd64", "--port=0"],
                 ["smoke", f"--image={REGISTRY}/UPPER:x"]):
        r = run_inv("-f", str(LOCAL_WORLD), *args, env=env, cwd=tmp_path)
        check_refused(r, tmp_path, "is not valid")
    assert _registry_state() == before


@pytest.mark.parametrize("report", [None, {"ok": True, "project": "OTHER", "manifest": {
    "reference": "127.0.0.1:1/none/app", "digest": "sha256:" + "0" * 64}, "platforms": []}])
def test_smoke_warns_once_about_a_mistyped_variable(report, tmp_path):
    import json

    out = tmp_path / "out"
    if report is not None:
        other = tmp_path / "other"
        other.mkdir()
        (other / "Cargo.toml").write_text('[package]\nname = "other"\nversion = "0.1.0"\n')
        out.mkdir()
        (out / "build-report.json").write_text(json.dumps({**report, "project": str(other)}))
    r = run_inv("smoke", env={"CROSSDOCK_OUT_DIR": str(out), "CROSSDOCK_TAGG": "x",
                              "DOCKER_HOST": "unix:///nonexistent.sock"}, cwd=tmp_path)
    assert r.returncode != 0
    assert r.stdout.count("warning: CROSSDOCK_TAGG is not a crossdock setting") == 1, r.stdout
