"""GitPython code against real temporary repositories."""

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
