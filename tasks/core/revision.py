"""What a build knows of its commit (``VcsInfo``, as ``engine.vcs.probe_vcs`` reads it from git) and the pure
rules on it: the image's version label, a remote URL safe to publish."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .tags import version_of_tag


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
