from __future__ import annotations

import pytest

from tasks.core.project import Package, ProjectError, choose_target, parse_binaries, probe_project
from tasks.core.settings import EXAMPLE_PROJECT


def pkg(name, *bins, directory="."):
    return Package(name=name, version="1.0.0", directory=directory, binaries=tuple(bins))


def test_auto_and_explicit_binaries():
    manifest = {"package": {"name": "app"}, "bin": [{"name": "extra", "path": "tools/extra.rs"}]}
    files = ["src/main.rs", "src/bin/worker.rs", "src/bin/cli/main.rs", "src/bin/README.md", "src/lib.rs"]
    assert parse_binaries(manifest, files) == ("extra", "app", "cli", "worker")


def test_autobins_false_keeps_only_explicit_binaries():
    manifest = {"package": {"name": "app", "autobins": False}, "bin": [{"name": "only"}]}
    assert parse_binaries(manifest, ["src/main.rs", "src/bin/x.rs"]) == ("only",)


def test_single_binary_is_chosen_without_package_flag():
    t = choose_target((pkg("app", "app"),), root_package="app")
    assert (t.bin, t.cargo_package) == ("app", "")


def test_binary_named_like_package_wins_among_several():
    t = choose_target((pkg("app", "app", "helper"),), root_package="app")
    assert t.bin == "app"


def test_several_binaries_without_choice_is_an_error():
    with pytest.raises(ProjectError, match="several binaries .*--bin"):
        choose_target((pkg("app", "one", "two"),), root_package="app")


def test_unknown_binary_is_an_error_listing_the_real_ones():
    with pytest.raises(ProjectError, match=r"no binary named 'nope'; binaries: app \(app\)"):
        choose_target((pkg("app", "app"),), bin="nope", root_package="app")


def test_workspace_member_gets_cargo_package():
    packages = (pkg("core", directory="crates/core"), pkg("server", "server", directory="crates/server"))
    t = choose_target(packages, root_package="")
    assert (t.bin, t.cargo_package, t.package.directory) == ("server", "server", "crates/server")
    assert choose_target(packages, package="crates/server").cargo_package == "server"
    with pytest.raises(ProjectError, match="no package 'web'"):
        choose_target(packages, package="web")


def test_project_without_binaries_is_an_error():
    with pytest.raises(ProjectError, match="builds no binary"):
        choose_target((pkg("lib"),), root_package="lib")


def test_probe_reads_the_example():
    packages, root = probe_project(EXAMPLE_PROJECT)
    assert root == "hello-crossdock"
    assert packages[0].binaries == ("hello-crossdock",) and packages[0].license == "MIT"


def test_probe_refuses_a_directory_without_cargo_toml(tmp_path):
    with pytest.raises(ProjectError, match="has no Cargo.toml"):
        probe_project(tmp_path)
    with pytest.raises(ProjectError, match="does not exist"):
        probe_project(tmp_path / "missing")


def test_probe_reads_a_virtual_workspace(tmp_path):
    workspace = '[workspace]\nmembers = ["crates/*"]\n[workspace.package]\nversion = "2.0.0"\n'
    (tmp_path / "Cargo.toml").write_text(workspace)
    for name in ("api", "lib"):
        d = tmp_path / "crates" / name
        (d / "src").mkdir(parents=True)
        (d / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion.workspace = true\n')
    (tmp_path / "crates" / "api" / "src" / "main.rs").write_text("fn main() {}\n")
    packages, root = probe_project(tmp_path)
    assert root == "" and [(p.name, p.version, p.binaries) for p in packages] == [
        ("api", "2.0.0", ("api",)), ("lib", "2.0.0", ())]


def test_stale_lockfile_is_named_with_the_fix(tmp_path):
    from tasks.core.project import check_lockfile, lockfile_problems

    pkg = Package(name="app", version="0.2.0", directory=".", binaries=("app",))
    lock = {"package": [{"name": "app", "version": "0.1.0"},
                        {"name": "serde", "version": "1.0.0", "source": "registry+https://x"}]}
    assert lockfile_problems(lock, [pkg]) == {"app": "Cargo.toml says app 0.2.0, Cargo.lock says 0.1.0"}
    assert lockfile_problems({"package": [{"name": "app", "version": "0.2.0"}]}, [pkg]) == {}
    assert lockfile_problems({"package": []}, [pkg]) == {"app": "app 0.2.0 is not in Cargo.lock"}
    (tmp_path / "Cargo.lock").write_text('version = 4\n\n[[package]]\nname = "app"\nversion = "0.1.0"\n')
    with pytest.raises(ProjectError, match=r"out of date .*cargo update --offline -p app"):
        check_lockfile(tmp_path, [pkg])
    check_lockfile(tmp_path / "nowhere", [pkg])  # no lock file: nothing to check


def test_build_refuses_a_stale_lockfile_before_anything_runs(tmp_path):
    import shutil

    from tests.conftest import EXAMPLE, run_inv

    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target"))
    manifest = project / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"', 1))
    for task in ("build", "release"):
        r = run_inv(task, f"--project={project}", f"--out-dir={tmp_path / 'out'}",
                    env={"DOCKER_HOST": "unix:///nonexistent.sock"})
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "Cargo.lock is out of date (Cargo.toml says hello-crossdock 0.2.0, Cargo.lock says 0.1.0)" in r.stderr
        assert "cargo update --offline -p hello-crossdock" in r.stderr and not (tmp_path / "out").exists()
