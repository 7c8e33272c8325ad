"""The real tier of a real service (examples/service): everything its Cargo.toml declares, built for amd64,
arm64 and arm/v7 and smoke-tested under QEMU; an image changed after the build fails naming the platform
and the check; every refusal comes before any `docker buildx build`; its release record rebuilds to the
same digests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    LOCAL_WORLD,
    REGISTRY,
    SUITE,
    make_project,
    rebuild_record,
    release_amd64_arm64,
    run_inv,
    unique_image,
)
from tests.test_smoke_real import derived_list

pytestmark = pytest.mark.real

SERVICE = SUITE / "examples" / "service"
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")


@dataclass(frozen=True)
class Service:
    project: Path
    out: Path
    report: dict
    smoke: subprocess.CompletedProcess[str]

    def ref(self, name: str) -> str:
        return next(p["reference"] for p in self.report["platforms"] if p["name"] == name)


@pytest.fixture(scope="session")
def built_service(engine, tmp_path_factory) -> Service:
    """The service, in a real git repo, built for three platforms and smoke-tested from its report (once)."""
    root = tmp_path_factory.mktemp("service")
    project = make_project(root / "depot", source=SERVICE, tag="v0.3.0")
    out = root / "out"
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64,arm", f"--project={project}",
                f"--image={unique_image('depot')}", "--tag=t1", f"--out-dir={out}")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    report = json.loads((out / "build-report.json").read_text())
    smoke = run_inv("-f", str(LOCAL_WORLD), "smoke", f"--out-dir={out}")
    return Service(project=project, out=out, report=report, smoke=smoke)


def test_every_check_the_spec_promises_passes_on_every_platform(built_service):
    r = built_service.smoke
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    smoke = json.loads((built_service.out / "smoke-report.json").read_text())
    assert [p["platform"] for p in smoke["platforms"]] == list(PLATFORMS)
    wanted = {"config entrypoint", "config cmd", "config user", "config workdir", "env DEPOT_DATA",
              "env DEPOT_CONFIG", "label org.opencontainers.image.title", "label org.opencontainers.image.authors",
              "annotation org.opencontainers.image.description", "exposed ports", "volumes", "stop signal",
              "healthcheck", "binary /depot", "binary /depot-ctl", "asset /start-depot.sh",
              "asset /etc/depot/depot.toml", "asset /install/self-cert/depot.pem",
              "asset /install/self-cert/install-cert.sh", "directory /data", "directory /data/layers",
              "directory /data/scratch", "directory /certs", "entrypoint file", "run", "service", "libraries"}
    for p in smoke["platforms"]:
        passed = {c["name"] for c in p["checks"] if c["ok"]}
        assert wanted <= passed, (p["platform"], wanted - passed)
        checks = {c["name"]: c["detail"] for c in p["checks"]}
        assert "writable (a file was written)" in checks["directory /data/layers"]
        assert "owner user" in checks["asset /etc/depot/depot.toml"]
        assert "libz.so.1" in checks["libraries"]  # the C library linked through pkg-config, found in the image


def test_the_image_is_as_declared_and_the_build_env_stays_out_of_it(built_service):
    ref = built_service.ref("arm64")
    spec = built_service.report["image"]
    assert (spec["user"], spec["uid"], spec["workdir"], spec["entrypoint"]) == ("depot", 333333, "/",
                                                                                ["/start-depot.sh"])
    out = subprocess.run(["docker", "run", "--rm", "--platform", "linux/arm64", "--entrypoint", "/depot-ctl", ref,
                          "--version"], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "depot-ctl 0.3.0 (aarch64-linux)", out.stdout + out.stderr
    out = subprocess.run(["docker", "run", "--rm", "--platform", "linux/arm64", ref, "--version"],
                         capture_output=True, text=True, timeout=300)  # through the start script
    assert re.fullmatch(r"depot 0\.3\.0 \(aarch64-linux\) metrics build=offline checksum=14ae1a1d crc=47948bbc",
                        out.stdout.strip()), out.stdout + out.stderr
    inspect = json.loads(subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True,
                                        check=True).stdout)[0]
    history = subprocess.run(["docker", "history", "--no-trunc", ref], capture_output=True, text=True,
                             check=True).stdout
    assert "DEPOT_BUILD_MODE" not in json.dumps(inspect) and "DEPOT_BUILD_MODE" not in history
    assert "DEPOT_DATA=./data" in inspect["Config"]["Env"] and inspect["Config"]["User"] == "333333:333333"


def test_an_image_changed_after_the_build_fails_naming_the_platform_and_the_check(built_service, tmp_path):
    """The arm64 image with one directory made unwritable (root's, mode 0555) and one asset's mode changed,
    written natively on top of the built image: smoke checks it against the spec the image carries."""
    dockerfile = (f"FROM --platform=$BUILDPLATFORM {REGISTRY}/crossdock/debian:trixie AS changes\n"
                  "RUN mkdir -p /x/data/layers /x/install/self-cert && chmod 0555 /x/data/layers \\\n"
                  "    && echo changed >/x/install/self-cert/depot.pem && chmod 0600 /x/install/self-cert/depot.pem\n"
                  f"FROM {built_service.ref('arm64')}\n"
                  "COPY --from=changes /x/ /\n")
    changed = derived_list(tmp_path, dockerfile=dockerfile, platform="linux/arm64")
    out = tmp_path / "out"
    r = run_inv("smoke", f"--image={changed}", f"--out-dir={out}",
                env={"CROSSDOCK_PROJECT": str(built_service.project)})
    assert r.returncode == 1, r.stdout + r.stderr
    assert ("linux/arm64: directory /data/layers: /data/layers: mode 0555, the spec says 0755; owned by 0:0, not "
            "the runtime user 333333:333333; user 333333:333333 cannot write into it") in r.stderr
    assert "linux/arm64: asset /install/self-cert/depot.pem: /install/self-cert/depot.pem: mode 0600, the spec " \
           "says 0644" in r.stderr
    report = json.loads((out / "smoke-report.json").read_text())
    checks = {c["name"]: c["ok"] for c in report["platforms"][0]["checks"]}
    assert checks["directory /data/scratch"] and checks["asset /start-depot.sh"]  # the rest still holds


REFUSALS = [
    ("asset source missing", ('["start-depot.sh", "/start-depot.sh", "755"]', '["start.sh", "/start-depot.sh", '
                              '"755"]'), "'start.sh' does not exist"),
    ("asset outside the project", ('["conf/depot.toml", "/etc/depot/", "644"]', '["../../outside.toml", '
                                   '"/etc/depot/", "644"]'), "leads outside the project"),
    ("relative dest", ('"/etc/depot/", "644"', '"etc/depot/", "644"'), "is relative"),
    ("dest on the binary", ('"/etc/depot/", "644"', '"/depot", "644"'), "lands on binary depot"),
    ("dest on a runtime file", ('"/etc/depot/", "644"', '"/etc/passwd", "644"'), "a file crossdock writes"),
    ("interpreter the flavour lacks", ('package = "depot"', 'package = "depot"\nruntime = "minimal"'),
     "the minimal flavour has no shell"),
    ("entrypoint nobody provides", ('entrypoint = ["/start-depot.sh"]', 'entrypoint = ["/start-trow.sh"]'),
     "/start-trow.sh is provided by no asset or binary"),
    ("uid 0", ("uid = 333333", "uid = 0"), "would run as root"),
    ("bins cargo does not build", ('bins = ["depot", "depot-ctl"]', 'bins = ["depot", "depotctl"]'),
     "cargo builds no binary depotctl"),
    ("undeclared feature", ('features = ["metrics"]', 'features = ["metrics", "s3"]'), "declares no feature s3"),
    ("secret-looking env", ('DEPOT_DATA = "./data"', 'DEPOT_DATA = "./data", S3_SECRET_KEY = "x"'),
     "S3_SECRET_KEY looks like a secret"),
    ("secret-looking build-env", ('DEPOT_BUILD_MODE = "offline"', 'DEPOT_BUILD_MODE = "offline", NPM_TOKEN = "x"'),
     "NPM_TOKEN looks like a secret"),
    ("unknown key", ("workdir = ", "workdri = "), "workdri (did you mean workdir?)"),
]


@pytest.mark.parametrize(("name", "change", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_comes_before_any_buildx_build(engine, tmp_path, name, change, message):
    project = tmp_path / "depot"
    shutil.copytree(SERVICE, project, ignore=shutil.ignore_patterns("target"))
    (tmp_path / "outside.toml").write_text("x = 1\n")
    manifest = project / "Cargo.toml"
    old, new = change
    assert old in manifest.read_text()
    manifest.write_text(manifest.read_text().replace(old, new, 1))
    out = tmp_path / "out"
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                f"--image={unique_image('refused')}", f"--out-dir={out}")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "crossdock: error: " in r.stderr and message in r.stderr, r.stderr
    assert "[package.metadata.crossdock]" in r.stderr
    assert "build started" not in r.stdout and not (out / "build").exists()  # no docker buildx build ran


def test_release_record_and_rebuild_reproduce_the_service(engine, tmp_path):
    project = make_project(tmp_path / "depot", source=SERVICE, tag="v0.3.0")
    path, record = release_amd64_arm64(project, image=unique_image("depot-release"), out=tmp_path / "out",
                                       version="0.3.0")
    image = record["build"]["image"]
    assert image["entrypoint"] == ["/start-depot.sh"] and image["uid"] == 333333
    assert ["/data/layers", "0755"] in image["dirs"] and image["build_env"] == {"DEPOT_BUILD_MODE": "offline"}
    report = rebuild_record(path, project=project, out=tmp_path / "rebuilt")
    assert [(p["platform"], p["result"]) for p in report["platforms"]] == [("linux/amd64", "match"),
                                                                          ("linux/arm64", "match")]
