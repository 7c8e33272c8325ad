"""The git probe against real temporary repositories."""

from __future__ import annotations

from tasks.engine.vcs import VcsInfo, probe_vcs, public_url, version_for
from tests.conftest import git, make_project


def test_probe_reads_revision_branch_time_and_tags(tmp_path):
    repo = make_project(tmp_path / "p", tag="v1.2.3")
    info = probe_vcs(repo / "src")  # any path inside the repository
    assert info is not None
    assert info.revision == git(repo, "rev-parse", "HEAD")
    assert info.branch == "main" and info.head_tags == ("v1.2.3",) and not info.dirty
    assert info.commit_time == int(git(repo, "log", "-1", "--format=%ct"))
    assert info.created.endswith("Z")
    assert version_for(info, "1.2.3") == "1.2.3"


def test_untracked_and_modified_files_make_it_dirty_but_ignored_ones_do_not(tmp_path):
    repo = make_project(tmp_path / "p")
    (repo / "target").mkdir()
    (repo / "target" / "junk").write_text("x")
    assert not probe_vcs(repo).dirty
    (repo / "new.txt").write_text("x")
    info = probe_vcs(repo)
    assert info.dirty
    assert version_for(info, "0.1.0") == f"0.1.0-g{info.short}.dirty"


def test_detached_head_has_no_branch(tmp_path):
    repo = make_project(tmp_path / "p")
    git(repo, "checkout", "-q", "--detach")
    assert probe_vcs(repo).branch == ""


def test_outside_git_there_is_no_info(tmp_path):
    assert probe_vcs(tmp_path) is None
    assert version_for(None, "0.3.0") == "0.3.0"


def test_untagged_version_marks_the_commit():
    info = VcsInfo(revision="abcdef1234", branch="main", commit_time=0, dirty=False, head_tags=("not-semver",),
                   remote_url="")
    assert version_for(info, "0.1.0") == "0.1.0-gabcdef1"


def test_public_url_drops_credentials():
    assert public_url("https://user:s3cret@git.example.com/o/r.git") == "https://git.example.com/o/r.git"
    assert public_url("git@github.com:o/r.git") == "git@github.com:o/r.git"


def test_annotated_tags_count_at_head_and_a_modified_or_staged_file_is_dirty(tmp_path):
    repo = make_project(tmp_path / "p")
    git(repo, "tag", "-a", "v2.0.0", "-m", "release")
    git(repo, "tag", "v2.0.0-alias")
    assert probe_vcs(repo).head_tags == ("v2.0.0", "v2.0.0-alias")
    (repo / "Cargo.toml").write_text((repo / "Cargo.toml").read_text() + "\n")
    assert probe_vcs(repo).dirty
    git(repo, "add", "Cargo.toml")
    assert probe_vcs(repo).dirty  # staged only


def test_a_repository_without_commits_has_no_info_and_the_remote_loses_its_credentials(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert probe_vcs(empty) is None
    assert probe_vcs(tmp_path / "no-such-dir") is None
    repo = make_project(tmp_path / "p")
    git(repo, "remote", "add", "origin", "https://user:s3cret@git.example.com/o/r.git")
    git(repo, "remote", "add", "mirror", "https://mirror.example.com/o/r.git")
    assert probe_vcs(repo).remote_url == "https://git.example.com/o/r.git"


def test_project_in_repository_is_relative_to_the_root(tmp_path):
    from tasks.engine.vcs import project_in_repository

    repo = make_project(tmp_path / "p")
    (repo / "crates" / "app").mkdir(parents=True)
    assert project_in_repository(repo) == "."
    assert project_in_repository(repo / "crates" / "app") == "crates/app"
    assert project_in_repository(tmp_path) == ""
