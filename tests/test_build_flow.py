"""`inv build`'s whole flow (probe, plan, stage, build every arch, join, report) against a fake engine: the
task-level tier between the pure core and the real one. No process starts (this is a unit-tier module);
git's facts are given (``known``), as the release gives them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from invoke import Config, Context

from tasks.core.capabilities import CONTAINERD_STORE, EngineFacts, capabilities
from tasks.core.project import choose_target, probe_project
from tasks.core.references import IndexEntry
from tasks.core.revision import VcsInfo
from tasks.core.settings import resolve
from tasks.engine.cli import Ran
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

    def __init__(self, *, dry: bool = False, failing: tuple[str, ...] = ()):
        self.c = Context(Config(overrides={"run": {"dry": dry}}))
        self.dry, self.failing = dry, failing
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


def run(tmp_path: Path, source: Path, engine: FakeEngine, **cli):
    project = tmp_path / "project"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("target"))
    settings = resolve(cli={"project": str(project), "out_dir": str(tmp_path / "out"),
                            "builder_image": "reg:5000/debian:bookworm", "runtime_image": "reg:5000/debian:bookworm",
                            **cli}, cwd=tmp_path)
    packages, root = probe_project(project)
    target = choose_target(packages, bin=settings.bin, package=settings.package, root_package=root)
    return settings, execute_build(engine, settings, known=(target, VCS))


def test_every_platform_is_built_pushed_joined_and_reported(tmp_path, capsys):
    engine = FakeEngine()
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64,arm", tag="t1")
    assert result is not None and result.ok
    # (the arches build at once: in any order)
    assert sorted(b[b.index("--platform") + 1] for b in engine.builds) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    assert all("--build-arg" in b and "BIN=hello-crossdock" in b for b in engine.builds)
    assert [a[0] for a in engine.acted] == ["skopeo"] * 3  # rewritten timestamps: OCI export, pushed by skopeo
    (tag, sources), = engine.joined
    assert tag == "127.0.0.1:5000/hello-crossdock:t1" and len(sources) == 3
    report = json.loads((settings.out_dir / "build-report.json").read_text())
    assert report["ok"] and report["version"] == "0.1.0" and report["image"]["entrypoint"] == ["/usr/local/bin/app"]
    assert [p["size"] for p in report["platforms"]] == [1000 + 2 ** 20] * 3
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


def test_a_dry_run_prints_every_command_and_stages_nothing(tmp_path):
    engine = FakeEngine(dry=True)
    settings, result = run(tmp_path, EXAMPLE, engine, platforms="amd64,arm64")
    assert result is None and len(engine.builds) == 2 and engine.joined
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
