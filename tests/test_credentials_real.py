"""Credentials the way CI has them: only `docker login` done (no REGISTRY_* variables), as
docker/login-action leaves a runner, and `inv release` still reads and publishes."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request

import pytest

from tests.conftest import PASSWORD
from tests.test_release_real import release, versioned_project

pytestmark = pytest.mark.real


def test_release_with_only_docker_login(auth_registry, tmp_path):
    config = tmp_path / "docker-config"
    subprocess.run(["docker", "--config", str(config), "login", "--username", "crossdock", "--password-stdin",
                    auth_registry], input=PASSWORD, text=True, check=True, capture_output=True)
    project = versioned_project(tmp_path, "7.0.0")
    env = {"DOCKER_CONFIG": str(config), "REGISTRY_USER": "", "REGISTRY_PASSWORD": ""}
    r = release(project, "test/ci-login", f"--registry={auth_registry}", "--platforms=amd64",
                out=tmp_path / "out", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    assert "logged in" not in r.stdout  # nothing to log in with: the Docker client's own login is used
    for log in (tmp_path / "out").rglob("*"):
        if log.is_file():
            assert PASSWORD not in log.read_text(errors="replace"), log
    req = urllib.request.Request(f"http://{auth_registry}/v2/test/ci-login/tags/list")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"crossdock:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        tags = json.loads(resp.read())["tags"]
    assert {"7.0.0", "7.0", "7", "latest"} <= set(tags), tags
    # and without any login the same registry refuses, naming the problem
    r = release(project, "test/ci-login", f"--registry={auth_registry}", "--platforms=amd64",
                out=tmp_path / "out2", env={"DOCKER_CONFIG": str(tmp_path / "empty"), "REGISTRY_USER": "",
                                            "REGISTRY_PASSWORD": ""})
    assert r.returncode == 1 and "401" in r.stderr and "Traceback" not in r.stderr

