"""Engine probes through invoke.MockContext: the exact commands, and the one-line errors."""

from __future__ import annotations

import pytest
from invoke import MockContext, Result

from tasks.engine.docker import EngineError, probe_engine
from tasks.engine.docker import _default_builder_is_current as REAL_DEFAULT_BUILDER_CHECK

INFO = "docker info --format '{{json .}}'"  # the version and the image store in one probe


def engine_answers(version: str) -> Result:
    return Result(f'{{"ServerVersion": "{version}", "Driver": "overlayfs", '
                  f'"DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}}\n')


@pytest.fixture(autouse=True)
def cli_only(monkeypatch):
    """These tests check the commands the CLI is asked (the engine socket answers the same; test_engines_real)."""
    monkeypatch.setattr("tasks.engine.api.EngineApi.socket", lambda self: "")


@pytest.fixture(autouse=True)
def ask_buildx(monkeypatch):
    """These tests check what buildx is asked: no shortcut for the engine's default builder."""
    monkeypatch.setattr("tasks.engine.docker._default_builder_is_current", lambda: False)


def test_the_default_builder_needs_no_buildx_probe(monkeypatch):
    from tasks.engine.docker import Engine

    monkeypatch.setattr("tasks.engine.docker._default_builder_is_current", lambda: True)
    monkeypatch.setattr("tasks.engine.docker._buildx_plugin_present", lambda: True)
    info = Engine(MockContext(run={INFO: engine_answers("26.1.5")}, repeat=False)).info()
    assert (info.server_version, info.driver) == ("26.1.5", "docker")
    # without the plugin it asks buildx, and says what is missing
    monkeypatch.setattr("tasks.engine.docker._buildx_plugin_present", lambda: False)
    c = MockContext(run={INFO: engine_answers("26.1.5"), INSPECT: Result("", stderr="not a command", exited=1),
                         BUILDX: Result("", stderr="not a command", exited=1)})
    with pytest.raises(EngineError, match="docker buildx is not installed"):
        Engine(c).info()


def test_buildx_state_decides_whether_the_default_builder_is_current(tmp_path, monkeypatch):
    _default_builder_is_current = REAL_DEFAULT_BUILDER_CHECK
    monkeypatch.setenv("BUILDX_CONFIG", str(tmp_path))
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)
    assert _default_builder_is_current()  # no state: the default
    (tmp_path / "current").write_text('{"Key":"unix:///var/run/docker.sock","Name":"","Global":false}')
    assert _default_builder_is_current()
    (tmp_path / "current").write_text('{"Key":"unix:///var/run/docker.sock","Name":"multi","Global":false}')
    assert not _default_builder_is_current()
    (tmp_path / "current").write_text("not json")
    assert not _default_builder_is_current()  # unsure: ask buildx
    (tmp_path / "current").unlink()
    monkeypatch.setenv("BUILDX_BUILDER", "multi")
    assert not _default_builder_is_current()
BUILDX = "docker buildx version"
INSPECT = "docker buildx inspect"


def test_probes_report_versions_and_driver():
    c = MockContext(run={
        INFO: engine_answers("20.10.24"),
        INSPECT + " multi": Result("Name: multi\nDriver: docker-container\n"),
    })
    info = probe_engine(c, builder="multi")
    assert (info.server_version, info.driver) == ("20.10.24", "docker-container")


def test_unreachable_engine_is_one_line_with_the_fix():
    c = MockContext(run={INFO: Result("", stderr="Client: ...\nCannot connect to the Docker daemon at "
                                         "unix:///var/run/docker.sock. Is the docker daemon running?\n", exited=1)})
    with pytest.raises(EngineError) as e:
        probe_engine(c)
    message = str(e.value)
    assert "\n" not in message and "Cannot connect to the Docker daemon" in message and "start dockerd" in message


def test_missing_buildx_names_the_plugin():
    not_a_command = "docker: 'buildx' is not a docker command.\n"
    c = MockContext(run={INFO: engine_answers("20.10.24"), INSPECT: Result("", stderr=not_a_command, exited=1),
                         BUILDX: Result("", stderr=not_a_command, exited=1)})
    with pytest.raises(EngineError, match="docker buildx is not installed.*docker-buildx"):
        probe_engine(c)


def test_missing_builder_says_how_to_create_it():
    c = MockContext(run={INFO: engine_answers("20.10.24"), BUILDX: Result("buildx 0.13\n"),
                         INSPECT + " gone": Result("", stderr="ERROR: no builder \"gone\" found\n", exited=1)})
    with pytest.raises(EngineError, match="docker buildx create --name gone"):
        probe_engine(c, builder="gone")


def test_every_buildx_command_goes_to_the_configured_builder():
    from tasks.engine.docker import Engine

    raw = '{"manifests": []}'
    c = MockContext(run={
        "docker buildx --builder multi imagetools inspect --raw reg:5000/app:1": Result(raw),
        "docker buildx --builder multi imagetools create --tag reg:5000/app:1 reg:5000/app@sha256:a": Result(""),
    })
    engine = Engine(c, builder="multi")
    assert engine.manifest_raw("reg:5000/app:1").stdout == raw
    assert engine.imagetools_create("reg:5000/app:1", ["reg:5000/app@sha256:a"]).ok
    assert Engine(MockContext(), builder="").buildx("imagetools", "inspect") == ("docker", "buildx", "imagetools",
                                                                                 "inspect")


def test_engine_is_probed_once_per_run():
    from tasks.engine.docker import Engine

    c = MockContext(run={INFO: engine_answers("26.1.5"), INSPECT: Result("Name: default\nDriver: docker\n")},
                    repeat=False)  # a second probe would find no answer left and fail
    engine = Engine(c)
    assert engine.info().driver == "docker" and engine.info().server_version == "26.1.5"
    assert engine.current_facts().image_store == "containerd"  # from the same `docker info`


class FakeEngine:
    """Task logic against a fake engine: what the registry holds, no shell strings."""

    def __init__(self, indexes):
        self.indexes = indexes
        self.dry = False

    def info(self):
        from tasks.engine.docker import EngineInfo

        return EngineInfo("26.1.5", "", "docker")

    def index_with_attestations(self, ref):
        return (self.indexes[ref], {}, "") if ref in self.indexes else (None, {}, "not found")


def test_smoke_refuses_a_platform_the_image_lacks_and_a_single_platform_image(tmp_path):
    from tasks.core.checks import Expectations
    from tasks.core.platforms import parse_platforms
    from tasks.core.references import IndexEntry
    from tasks.core.settings import resolve
    from tasks.steps.smoke import SmokeError, run_smoke

    engine = FakeEngine({"reg:5000/app:1": [IndexEntry("linux/amd64", "sha256:a")], "reg:5000/one:1": []})
    settings = resolve(cwd=tmp_path)
    with pytest.raises(SmokeError, match=r"reg:5000/app:1 has no linux/arm64 \(it has linux/amd64\)"):
        run_smoke(engine, settings, image="reg:5000/app:1", expect=Expectations(),
                  platforms=parse_platforms("arm64"))
    with pytest.raises(SmokeError, match="single-platform image"):
        run_smoke(engine, settings, image="reg:5000/one:1", expect=Expectations())
    with pytest.raises(SmokeError, match="cannot read image reg:5000/nope:1: not found"):
        run_smoke(engine, settings, image="reg:5000/nope:1", expect=Expectations())
