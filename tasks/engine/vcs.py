"""What git says about the project: revision, branch, commit time, a version string.

The probe every build runs asks the git CLI directly (plumbing commands, in parallel); GitPython checks out
a recorded commit for ``inv rebuild``.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import CrossdockError
from ..core.revision import VcsInfo, public_url, version_for  # noqa: F401 (the probe's answer; callers' names)


class VcsError(CrossdockError):
    """git itself is missing."""


# What a build needs to know, each from one git plumbing command; all are started at once (they read, and
# take no optional lock: GIT_OPTIONAL_LOCKS=0). The git CLI and not GitPython here: this probe runs on every
# build, `--dry` included, and importing GitPython cost ~0.1 s, a third of a dry run's budget (#11).
_PROBES = {
    "head": ("log", "-1", "--no-show-signature", "--format=%H %ct", "HEAD"),  # fails outside git / no commits
    "branch": ("symbolic-ref", "-q", "--short", "HEAD"),  # exit 1 when detached
    "tags": ("tag", "--points-at", "HEAD"),  # annotated tags peeled to their commit, like lightweight ones
    "status": ("status", "--porcelain", "--untracked-files=normal"),  # tracked changes and untracked files
    "remotes": ("config", "--get-regexp", r"^remote\..*\.url$"),  # in the config's order: the first remote's url
}


def _git_outputs(path: Path, probes: dict[str, tuple[str, ...]]) -> dict[str, tuple[int, str]]:
    """``{name: (exit status, stdout)}`` of ``git ARGS`` run in ``path``, all started at once."""
    import os
    import subprocess

    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        procs = {name: subprocess.Popen(["git", *args], cwd=path, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for name, args in probes.items()}
    except FileNotFoundError:
        raise VcsError("git is not installed (or not on PATH): install it (Debian: apt-get install git)") from None
    outputs = {}
    for name, proc in procs.items():
        stdout, _ = proc.communicate()
        outputs[name] = (proc.returncode, stdout)
    return outputs


def _directory(path: Path) -> Path | None:
    path = Path(path)
    if path.is_dir():
        return path
    return path.parent if path.parent.is_dir() and path.exists() else None


def probe_vcs(path: Path) -> VcsInfo | None:
    """Read the git repository containing ``path``; ``None`` when there is none (or it has no commits)."""
    where = _directory(path)
    if where is None:
        return None
    out = _git_outputs(where, _PROBES)
    status, head = out["head"]
    if status != 0 or len(head.split()) != 2:
        return None
    revision, committed = head.split()
    urls = [line.split(None, 1)[1] for line in out["remotes"][1].splitlines() if len(line.split(None, 1)) == 2]
    return VcsInfo(
        revision=revision,
        branch=out["branch"][1].strip() if out["branch"][0] == 0 else "",
        commit_time=int(committed),
        dirty=bool(out["status"][1].strip()),
        head_tags=tuple(sorted(out["tags"][1].split())),
        remote_url=public_url(urls[0]) if urls else "",
    )


def project_in_repository(path: Path) -> str:
    """The project's directory relative to the root of its git repository ('.' at the root; '' outside git)."""
    where = _directory(path)
    if where is None:
        return ""
    status, prefix = _git_outputs(where, {"prefix": ("rev-parse", "--show-prefix")})["prefix"]
    if status != 0:
        return ""
    return prefix.strip().rstrip("/") or "."


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
