"""`inv build`'s whole flow (probe, plan, stage, build every arch, join, report) against a fake engine: the
task-level tier between the pure core and the real one. No process starts (this is a unit-tier module);
git's facts are given (``known``), as the release gives them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from invoke import Config, Context

from tasks.core.capabilities import CONTAINERD_STORE, EngineFacts, capabilities
from tasks.core.project import choose_target, probe_project
from tasks.core.references import IndexEntry
from tasks.core.revision import VcsInfo
from tasks.core.settings import resolve
from tasks.engine.cli import Ran
from tasks.engine.docker import EngineError
from tasks.steps.build import execute_build

EXAMPLE = Path(__file__).resolve().parent.parent / "example"
SERVICE = Path(__file__).resolve().parent.parent / "examples" / "service"
VCS = VcsInfo(revision="c0ffee" * 6 + "abcd", branch="main", commit_time=1700000000, dirty=False,
              head_tags=("v0.1.0",), remote_url="")


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class FakeEngine:
    """What execute_build asks of an engine, answered the way Docker 26.1 with the containerd store does:
    every build writes its metadata file; every push is an image manifest; joins answer a digest."""

    def __init__(self, *, dry: bool = False, failing: tuple[str, ...] = (), joint_declines: str = "",
                 joint_fails_for: tuple[str, ...] = ()):
        self.c = Context(Config(overrides={"run": {"dry": dry}}))
        self.dry, self.failing, self.joint_declines = dry, failing, joint_declines
        self.joint_fails_for = joint_fails_for  # platform.sh's verdict per target after cargo --keep-going
        self.builds: list[tuple[str, ...]] = []
        self.acted: list[tuple[str, ...]] = []
        self.joined: list[tuple[str, list[str]]] = []
        self.manifests: dict[str, str] = {}

    def info(self):
        from tasks.engine.docker import EngineInfo

        return EngineInfo(server_version="26.1.5", builder="", driver="docker")

    def capabilities(self):
        return capabilities(EngineFacts("26.1.5", "v0.13.2", "docker", CONTAINERD_STORE))

    def index_digest(self, image: str):
        platforms = ("linux/amd64", "linux/arm64", "linux/arm/v7")
        return "sha256:" + "b" * 64, [IndexEntry(p, f"sha256:{i}" + "0" * 63) for i, p in enumerate(platforms)]

    def build(self, argv, log=None):
        self.builds.append(tuple(argv))
        if "joint-out" in argv:
            return self.joint(argv, log)
        platform = argv[argv.index("--platform") + 1]
        if self.dry:
            return Ran(ok=True)
        if platform in self.failing:
            if log is not None:
                log.write("error: cargo exited 101\n")
            return Ran(ok=False, exited=1)
        manifest = json.dumps({"schemaVersion": 2, "config": {"size": 1000}, "layers": [{"size": 2 ** 20}],
                               "platform": platform})
        digest = digest_of(manifest)
        self.manifests[digest] = manifest
        Path(argv[argv.index("--metadata-file") + 1]).write_text(json.dumps({"containerimage.digest": digest}))
        return Ran(ok=True)

    def joint(self, argv, log):
        """The joint compile: its local export (the binaries, or why it declined) and platform.sh's counts."""
        if self.dry:
            return Ran(ok=True)
        if "joint" in self.failing:
            log.write("error: could not compile `app`\n")
            return Ran(ok=False, exited=1)
        if self.joint_fails_for:
            targets = argv[argv.index(next(a for a in argv if a.startswith("TARGETS=")))].split("=", 1)[1]
            for t in targets.split():
                verdict = "FAILED (cargo exited 101)" if t in self.joint_fails_for else "compiled"
                log.write(f"#17 9.9 platform.sh: joint compile: {t} {verdict}\n")
            return Ran(ok=False, exited=1)
        out = Path(argv[argv.index("--output") + 1].split("dest=", 1)[1])
        out.mkdir(parents=True)
        if self.joint_declines:
            (out / "per-platform").write_text(self.joint_declines + "\n")
            return Ran(ok=True)
        log.write("#12 3.1 platform.sh: cook: compiled 30 unit(s) for the build machine (build scripts, proc-macros "
                  "and their dependencies) and 45 for 3 target(s)\n"
                  "#15 9.0 platform.sh: compiled 0 unit(s) for the build machine (build scripts, proc-macros and "
                  "their dependencies) and 3 for 3 target(s)\n")
        return Ran(ok=True)

    def act(self, argv, out=None, **_):
        self.acted.append(tuple(argv))
        return Ran(ok=True)

    def manifest_raw(self, ref: str) -> Ran:
        digest = ref.rsplit("@", 1)[-1]
        return Ran(ok=digest in self.manifests, stdout=self.manifests.get(digest, ""))

    def imagetools_create(self, tag, sources, annotations=()):
        self.joined.append((tag, list(sources)))
        return Ran(ok=True)

    def join(self, tag, repository, sources, images, attested=(), annotations=()):
        self.joined.append((tag, [f"{repository}@{s}" for s in sources]))
        return digest_of(tag + "".join(sources)), ""


@pytest.fixture(autouse=True)
def skopeo_installed(monkeypatch):
    """skopeo, which pushes the OCI export when the docker driver rewrites timestamps, is "installed": what
    this machine has on its PATH must not change what the flow does (the test below takes it away)."""
    monkeypatch.setattr("tasks.steps.build.shutil.which", lambda name: f"/usr/bin/{name}")


def test_without_skopeo_rewriting_timestamps_with_the_docker_driver_is_refused_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr("tasks.steps.build.shutil.which", lambda name: None)
    engine = FakeEngine()
    with pytest.raises(EngineError, match="needs skopeo.*apt-get install skopeo"):
        run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64")
    assert engine.builds == []


def run(tmp_path: Path, source: Path, engine: FakeEngine, *, join: bool = True, **cli):
    project = tmp_path / "project"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("target"))
    settings = resolve(cli={"project": str(project), "out_dir": str(tmp_path / "out"),
                            "builder_image": "reg:5000/debian:bookworm", "runtime_image": "reg:5000/debian:bookworm",
                            **cli}, cwd=tmp_path)
    packages, root = probe_project(project)
    target = choose_target(packages, bin=settings.bin, package=settings.package, root_package=root)
    return settings, execute_build(engine, settings, known=(target, VCS), join=join)


def test_every_platform_is_built_pushed_joined_and_reported(tmp_path, capsys):
    engine = FakeEngine()
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64,arm", tag="t1")
    assert result is not None and result.ok
    joint, *arches = engine.builds  # one cargo for all three first, then each platform's image
    assert joint[joint.index("--target") + 1] == "joint-out" and "--platform" not in joint
    assert "TARGETS=amd64 arm64 arm/v7" in joint and "COMPILE=joint" in joint
    # (the arches build at once: in any order)
    assert sorted(b[b.index("--platform") + 1] for b in arches) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    assert all("COMPILE=joint" in b and "TARGETS=amd64 arm64 arm/v7" in b for b in arches)
    assert all("--build-arg" in b and "BIN=hello-crossdock" in b for b in engine.builds)
    assert [a[0] for a in engine.acted] == ["skopeo"] * 3  # rewritten timestamps: OCI export, pushed by skopeo
    (tag, sources), = engine.joined
    assert tag == "127.0.0.1:5000/hello-crossdock:t1" and len(sources) == 3
    report = json.loads((settings.out_dir / "build-report.json").read_text())
    assert report["ok"] and report["version"] == "0.1.0" and report["image"]["entrypoint"] == ["/usr/local/bin/app"]
    assert [p["size"] for p in report["platforms"]] == [1000 + 2 ** 20] * 3
    assert report["compile"] == {"joint": True, "targets": "amd64 arm64 arm/v7", "host_units": 30,
                                 "target_units": 48}
    staged = settings.project / "target" / "crossdock"
    assert (staged / "sh" / "platform.sh").is_file()
    assert "FROM runtime-slim AS image" in (staged / "Dockerfile").read_text()
    assert "linux/arm/v7" in capsys.readouterr().out  # the summary table


def test_a_failed_platform_is_named_and_nothing_is_joined(tmp_path):
    engine = FakeEngine(failing=("linux/arm64",))
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64", tag="t1")
    assert result is not None and not result.ok and result.failed == ["linux/arm64"]
    assert engine.joined == []
    report = json.loads((settings.out_dir / "build-report.json").read_text())
    failed = [p for p in report["platforms"] if not p["ok"]]
    assert [p["platform"] for p in failed] == ["linux/arm64"] and "exited 1" in failed[0]["error"]


def test_targets_whose_features_differ_get_a_cargo_each_and_the_report_says_why(tmp_path, capsys):
    why = "the resolved features differ by target: aarch64-unknown-linux-gnu alone gets units ..."
    engine = FakeEngine(joint_declines=why)
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64", tag="t1")
    assert result is not None and result.ok
    joint, *arches = engine.builds
    assert "joint-out" in joint and len(arches) == 2
    assert not any("COMPILE=joint" in b or any(a.startswith("TARGETS=") for a in b) for b in arches)
    assert f"one cargo per platform instead: {why}" in capsys.readouterr().out
    report = json.loads((settings.out_dir / "build-report.json").read_text())
    assert report["compile"] == {"joint": False, "why": why}


def test_a_failed_joint_compile_fails_every_platform_and_builds_no_image(tmp_path):
    engine = FakeEngine(failing=("joint",))
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64", tag="t1")
    assert result is not None and not result.ok and result.failed == ["linux/amd64", "linux/arm64"]
    assert len(engine.builds) == 1 and engine.joined == []
    report = json.loads((settings.out_dir / "build-report.json").read_text())
    assert all("compile for every platform failed" in p["error"] and p["log"].endswith("joint.log")
               for p in report["platforms"])


def test_a_platform_cargo_failed_for_is_named_and_the_others_are_built_on_their_own(tmp_path, capsys):
    engine = FakeEngine(joint_fails_for=("arm/v7",))
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64,arm", tag="t1")
    assert result is not None and not result.ok and result.failed == ["linux/arm/v7"]
    joint, *separate = engine.builds
    assert "joint-out" in joint and not any("COMPILE=joint" in b for b in separate)
    assert sorted(b[b.index("--platform") + 1] for b in separate) == ["linux/amd64", "linux/arm64"]
    assert engine.joined == []
    out = capsys.readouterr().out
    assert "linux/arm/v7: FAILED" in out and "joint compile: arm/v7 FAILED" in out  # and the log's tail
    report = json.loads((settings.out_dir / "build-report.json").read_text())
    assert [(p["name"], p["ok"]) for p in report["platforms"]] == [("amd64", True), ("arm64", True), ("arm/v7", False)]


def test_no_join_one_platform_and_joint_compile_off_compile_each_platform_on_its_own(tmp_path):
    for cli, join in (({"platforms": "amd64,arm64"}, False), ({"platforms": "arm64"}, True),
                      ({"platforms": "amd64,arm64", "joint_compile": "off"}, True)):
        engine = FakeEngine()
        project = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
        project.mkdir()
        settings, result = run(project, EXAMPLE, engine, **cli, join=join)
        assert result is not None and result.ok
        assert not any("joint-out" in b or "COMPILE=joint" in b for b in engine.builds)
        assert result.compile == {"joint": False}


def test_a_dry_run_prints_every_command_and_stages_nothing(tmp_path):
    engine = FakeEngine(dry=True)
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64")
    assert result is None and len(engine.builds) == 3 and engine.joined
    assert "joint-out" in engine.builds[0]
    assert not (settings.project / "target").exists() and not (settings.out_dir / "build-report.json").exists()


def test_the_service_spec_reaches_the_commands_and_the_staged_files(tmp_path):
    engine = FakeEngine()
    settings, result = run(tmp_path, SERVICE, engine, platforms="arm64", package="depot", bin="depot")
    assert result is not None and result.ok
    argv = engine.builds[0]
    assert "BINS=depot-ctl" in argv and "APP_UID=333333" in argv and "CARGO_FEATURES=--features=metrics" in argv
    assert any(a.startswith("manifest:org.opencontainers.image.description=") for a in argv)
    staged = settings.project / "target" / "crossdock"
    assert (staged / "build-env").read_text() == "DEPOT_BUILD_MODE=offline\n"
    assert "file 0755 root /start-depot.sh" in (staged / "image" / "layout").read_text()
    assert (staged / "image" / "files" / "start-depot.sh").is_file()
