"""Release tags with docker/metadata-action's semantics, plus one rule it lacks: `latest`, `X` and `X.Y`
only move forward. Pure.

A stable release ``X.Y.Z`` gets ``X.Y.Z`` and ``sha-<7>``, and ``X.Y`` / ``X`` / ``latest`` only when it is
the highest stable version in that line among the tags already in the registry (so 1.1.5 after 1.2.0
gets ``1.1.5`` and ``1.1``, not ``1`` or ``latest``). A pre-release (``1.3.0-rc.1``) gets only its own tag.
A ``0.Y.Z`` release gets no bare ``0`` (as in docker/metadata-action: ``0`` would float across breaking 0.x
releases); its ``0.Y`` and ``latest`` follow the forward-only rule.
Semver build metadata (``+build.5``) is not allowed in a Docker tag: ``+`` becomes ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import CrossdockError

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")
DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class VersionError(CrossdockError):
    """Not a semantic version; the message says what was expected."""


@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.prerelease}" if self.prerelease else "") + (
            f"+{self.build}" if self.build else "")

    @property
    def stable(self) -> bool:
        return not self.prerelease

    def key(self) -> tuple:
        """Semver precedence (build metadata ignored; a pre-release sorts before its release)."""
        pre: tuple = (1,)
        if self.prerelease:
            pre = (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease.split(".")))
        return (self.major, self.minor, self.patch, pre)


def parse_semver(text: str) -> SemVer:
    m = SEMVER.match(text.strip())
    if not m:
        raise VersionError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], "
                           f"e.g. 1.2.3 or 1.3.0-rc.1)")
    return SemVer(int(m[1]), int(m[2]), int(m[3]), m[4] or "", m[5] or "")


def version_of_tag(tag: str, prefix: str = "v") -> SemVer | None:
    """The version a git tag names (``v1.2.3`` with prefix ``v``, or bare ``1.2.3``), else None."""
    for candidate in ([tag[len(prefix):]] if prefix and tag.startswith(prefix) else []) + [tag]:
        try:
            return parse_semver(candidate)
        except VersionError:
            continue
    return None


def docker_tag(version: SemVer) -> str:
    return str(version).replace("+", "_")


def existing_versions(tags: Iterable[str]) -> list[SemVer]:
    """Stable and pre-release versions among a repository's tags (others, like `latest`, ignored)."""
    found = []
    for t in tags:
        try:
            found.append(parse_semver(t.replace("_", "+", 1) if "_" in t else t))
        except VersionError:
            continue
    return found


@dataclass(frozen=True)
class TagPlan:
    tags: tuple[str, ...]  # in publishing order: the specific ones first, `latest` last
    held_back: tuple[tuple[str, str], ...]  # (tag, why it does not move)


def plan_tags(version: SemVer, *, revision: str, existing: Iterable[str]) -> TagPlan:
    own = docker_tag(version)
    if not version.stable:
        return TagPlan(tags=(own,), held_back=(("latest", "a pre-release gets only its own tag"),))
    stable = [v for v in existing_versions(existing) if v.stable]
    tags = [own, f"sha-{revision[:7]}"]
    held: list[tuple[str, str]] = []
    lines = [(f"{version.major}.{version.minor}", lambda v: (v.major, v.minor) == (version.major, version.minor)),
             (f"{version.major}", lambda v: v.major == version.major),
             ("latest", lambda v: True)]
    for tag, in_line in lines:
        if tag == "0" and version.major == 0:  # like docker/metadata-action: 0.x makes no promise across minors
            held.append((tag, "a 0.x version gets no bare major tag"))
            continue
        newer = [v for v in stable if in_line(v) and v.key() > version.key()]
        if newer:
            top = max(newer, key=SemVer.key)
            held.append((tag, f"{top} is newer"))
        else:
            tags.append(tag)
    return TagPlan(tags=tuple(tags), held_back=tuple(held))
