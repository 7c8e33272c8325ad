"""Engine probes through invoke.MockContext: the exact commands, and the one-line errors."""

from __future__ import annotations

import pytest
from invoke import MockContext, Result

from tasks.engine.docker import EngineError, probe_engine

VERSION = "docker version --format '{{.Server.Version}}'"
BUILDX = "docker buildx version"
INSPECT = "docker buildx inspect"


def test_probes_report_versions_and_driver():
    c = MockContext(run={
        VERSION: Result("20.10.24\n"),
        INSPECT + " multi": Result("Name: multi\nDriver: docker-container\n"),
    })
    info = probe_engine(c, builder="multi")
    assert (info.server_version, info.driver) == ("20.10.24", "docker-container")


def test_unreachable_engine_is_one_line_with_the_fix():
    c = MockContext(run={VERSION: Result("", stderr="Client: ...\nCannot connect to the Docker daemon at "
                                         "unix:///var/run/docker.sock. Is the docker daemon running?\n", exited=1)})
    with pytest.raises(EngineError) as e:
        probe_engine(c)
    message = str(e.value)
    assert "\n" not in message and "Cannot connect to the Docker daemon" in message and "start dockerd" in message


def test_missing_buildx_names_the_plugin():
    not_a_command = "docker: 'buildx' is not a docker command.\n"
    c = MockContext(run={VERSION: Result("20.10.24\n"), INSPECT: Result("", stderr=not_a_command, exited=1),
                         BUILDX: Result("", stderr=not_a_command, exited=1)})
    with pytest.raises(EngineError, match="docker buildx is not installed.*docker-buildx"):
        probe_engine(c)


def test_missing_builder_says_how_to_create_it():
    c = MockContext(run={VERSION: Result("20.10.24\n"), BUILDX: Result("buildx 0.13\n"),
                         INSPECT + " gone": Result("", stderr="ERROR: no builder \"gone\" found\n", exited=1)})
    with pytest.raises(EngineError, match="docker buildx create --name gone"):
        probe_engine(c, builder="gone")
