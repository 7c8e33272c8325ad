"""Release guards: everything that must hold before a release builds or pushes anything. Pure.

``check_release`` takes the gathered state and returns the version to release, or raises
``ReleaseError`` with what is wrong and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CrossdockError
from .tags import SemVer, VersionError, parse_semver, version_of_tag


class ReleaseError(CrossdockError):
    """The release cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class ReleaseState:
    head_tags: tuple[str, ...]
    dirty: bool
    cargo_version: str
    revision: str
    tag_prefix: str = "v"
    # repository -> revision label of the version tag already published there ("" if not published)
    published_revisions: dict[str, str] = field(default_factory=dict)


def release_version(state: ReleaseState) -> SemVer:
    if not state.revision:
        raise ReleaseError("the project is not in a git repository: a release needs a tagged commit")
    candidates = [t for t in state.head_tags if t.startswith(state.tag_prefix) or t[:1].isdigit()]
    if not candidates:
        raise ReleaseError(f"HEAD ({state.revision[:7]}) is not tagged: tag the release commit, e.g. "
                           f"`git tag {state.tag_prefix}{state.cargo_version}`, then run the release again")
    versions = [(t, version_of_tag(t, state.tag_prefix)) for t in candidates]
    valid = [(t, v) for t, v in versions if v is not None]
    if not valid:
        tag = candidates[0]
        try:
            parse_semver(tag[len(state.tag_prefix):] if tag.startswith(state.tag_prefix) else tag)
        except VersionError as e:
            raise ReleaseError(f"tag {tag!r} on HEAD is not a valid version: {e}") from None
    if len(valid) > 1:
        raise ReleaseError(f"HEAD has several version tags ({', '.join(t for t, _ in valid)}): keep one")
    return valid[0][1]  # type: ignore[return-value]


def check_release(state: ReleaseState) -> SemVer:
    """Every guard, in the order a person would check them. Returns the version to release."""
    version = release_version(state)
    if str(version).split("+")[0] != state.cargo_version.split("+")[0]:
        raise ReleaseError(f"the tag says {version} but Cargo.toml says {state.cargo_version}: set "
                           f"`version = \"{version}\"` in Cargo.toml (commit, re-tag) or tag "
                           f"{state.tag_prefix}{state.cargo_version}")
    if state.dirty:
        raise ReleaseError("the working tree has uncommitted changes (ignored files do not count): commit or "
                           "stash them; a release is built from exactly the tagged commit")
    for repo, published in state.published_revisions.items():
        if published and published != state.revision:
            raise ReleaseError(f"{repo}:{version} is already published from commit {published[:7]}, not "
                               f"{state.revision[:7]}: release a new version instead of overwriting it")
    return version


def published_from_here(state: ReleaseState) -> str:
    """A repository that already has this version from this very commit ("" if none): a re-run then
    reuses that index (completing tags a broken run left behind) instead of building again."""
    return next((repo for repo, rev in state.published_revisions.items() if rev == state.revision), "")
