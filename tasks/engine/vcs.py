"""What git says about the project: revision, branch, commit time, a version string (GitPython)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..core.tags import version_of_tag


@dataclass(frozen=True)
class VcsInfo:
    revision: str  # full commit id, or "unknown" outside git
    branch: str  # "" when detached or outside git
    commit_time: int  # seconds since the epoch (SOURCE_DATE_EPOCH)
    dirty: bool
    head_tags: tuple[str, ...]  # tags that point at HEAD
    remote_url: str

    @property
    def short(self) -> str:
        return self.revision[:7]

    @property
    def created(self) -> str:
        """RFC 3339 UTC of the commit time, for org.opencontainers.image.created."""
        return datetime.fromtimestamp(self.commit_time, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_for(vcs: VcsInfo | None, cargo_version: str, *, tag_prefix: str = "v") -> str:
    """The image's version label: a semver tag on HEAD, else the Cargo version marked with the commit."""
    if vcs is None:
        return cargo_version
    for tag in vcs.head_tags:
        version = version_of_tag(tag, tag_prefix)
        if version and not vcs.dirty:
            return str(version)
    return f"{cargo_version}-g{vcs.short}" + (".dirty" if vcs.dirty else "")


def public_url(remote: str) -> str:
    """A remote URL without credentials (``https://user:token@host/x`` -> ``https://host/x``)."""
    return re.sub(r"^(\w+://)[^/@]*@", r"\1", remote)


def probe_vcs(path: Path) -> VcsInfo | None:
    """Read the git repository containing ``path``; ``None`` when there is none."""
    import git  # GitPython; imported here so the pure modules never load it

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        head = repo.head.commit
    except ValueError:  # a repository without commits
        return None
    try:
        branch = repo.active_branch.name
    except TypeError:  # detached HEAD
        branch = ""
    tags = tuple(sorted(t.name for t in repo.tags if t.commit == head))
    remote = ""
    if repo.remotes:
        remote = public_url(next(iter(repo.remotes[0].urls), ""))
    return VcsInfo(
        revision=head.hexsha,
        branch=branch,
        commit_time=int(head.committed_date),
        dirty=repo.is_dirty(untracked_files=True),
        head_tags=tags,
        remote_url=remote,
    )


def project_in_repository(path: Path) -> str:
    """The project's directory relative to the root of its git repository ('.' at the root; '' outside git)."""
    import git

    try:
        root = git.Repo(path, search_parent_directories=True).working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return ""
    return str(Path(path).resolve().relative_to(Path(root).resolve())) if root else ""


def checkout(path: Path, commit: str, into: Path) -> None:
    """A detached work tree of ``commit`` of the repository holding ``path``, at ``into`` (a clone that shares
    the repository's objects: the original work tree and its index are untouched). ``ValueError`` when
    the commit is not there."""
    import git

    repo = git.Repo(path, search_parent_directories=True)
    try:
        repo.commit(commit)
    except (ValueError, git.BadName) as e:
        raise ValueError(f"commit {commit} is not in {repo.working_tree_dir} ({e}): fetch it first") from None
    clone = repo.clone(str(into), shared=True, no_checkout=True)
    clone.git.checkout("--detach", commit)
