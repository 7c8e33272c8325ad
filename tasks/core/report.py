"""Typed results of a build (turned into JSON only for the report file) and the summary tables. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CrossdockError
from .image import ImageSpec
from .platforms import Platform


@dataclass(frozen=True)
class ArchResult:
    platform: Platform
    triple: str  # the Rust target the build used
    ok: bool
    digest: str = ""
    reference: str = ""  # where the per-arch image can be pulled (tag or digest)
    size: int = 0  # bytes; 0 = unknown
    seconds: float = 0.0
    log: str = ""
    error: str = ""
    flavour: str = ""  # rustup | debian: the toolchain the build used (as platform.sh reported it)
    pushed: str = ""  # what the build pushed when it is not the image alone: the index of image + attestation
    attestation: str = ""  # the provenance attestation manifest beside the image ("" = none)

    @property
    def source(self) -> str:
        """The digest a manifest list is joined from (the per-platform index keeps the attestation)."""
        return self.pushed or self.digest

    @property
    def label(self) -> str:
        """What the tables call this row: the Docker platform (``linux/arm/v7``)."""
        return self.platform.docker

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform.docker, "name": self.platform.name, "rust_target": self.triple,
                "rust_flavour": self.flavour, "ok": self.ok, "digest": self.digest, "pushed": self.source,
                "attestation": self.attestation, "reference": self.reference,
                "size": self.size,
                "seconds": round(self.seconds, 1), "log": self.log, "error": self.error}


@dataclass(frozen=True)
class BuildResult:
    """What `inv build` produced: every arch, and the manifest list joining them (when all succeeded)."""

    project: Path
    bin: str
    build_args: Mapping[str, str]
    package_version: str
    output: str  # push | load
    arches: tuple[ArchResult, ...]
    manifest_ref: str  # "" when nothing was joined (load mode, or a failure)
    manifest_digest: str
    joined: bool  # the manifest list was created (or none was asked for, in load mode)
    problems: tuple[str, ...] = ()  # what failed besides the arches (joining the index)
    seconds: float = 0.0
    repository: str = ""  # registry/image the arches were pushed to
    tag: str = ""  # the tag of the manifest list (joined now, or later by `inv merge`)
    provenance: str = "off"  # the provenance attestation mode every platform was built with
    reproducible: bool = False  # timestamps rewritten to SOURCE_DATE_EPOCH
    image: ImageSpec | None = None  # what went into the image
    compile: Mapping[str, Any] = field(default_factory=dict)  # how it was compiled (joint or per platform, why)

    @property
    def ok(self) -> bool:
        return bool(self.arches) and all(a.ok for a in self.arches) and self.joined and not self.problems

    @property
    def version(self) -> str:
        return self.build_args["VERSION"]

    @property
    def failed(self) -> list[str]:
        return [a.label for a in self.arches if not a.ok] or (["the manifest list"] if not self.ok else [])

    def to_json(self) -> dict[str, Any]:
        """The report written to out/build-report.json (read by `inv smoke` and by CI)."""
        return {
            "ok": self.ok,
            "project": str(self.project),
            "bin": self.bin,
            "version": self.build_args["VERSION"],
            "package_version": self.package_version,
            "revision": self.build_args["VCS_REF"],
            "created": self.build_args["DATE"],
            "source": self.build_args["SOURCE_URL"],
            "output": self.output,
            "manifest": {"reference": self.manifest_ref if self.ok else "", "digest": self.manifest_digest},
            "repository": self.repository,
            "tag": self.tag,
            "settings": image_settings(self.build_args),
            "image": self.image.to_json() if self.image is not None else None,
            "provenance": self.provenance,
            "reproducible": self.reproducible,
            "seconds": round(self.seconds, 1),
            "compile": dict(self.compile),
            "platforms": [a.to_json() for a in self.arches],
        }


# Build arguments that do not shape the image: where this machine keeps cargo's target dir, how many
# compiles it runs at once (slots or jobserver tokens), whether it compiles the workspace's crates in a layer of
# their own for a registry cache (COOK_WORKSPACE). Every other argument must be the same for arches built
# on different machines.
MACHINE_ARGS = ("CACHE_KEY", "COMPILE_SLOTS", "COMPILE_TOKENS", "COOK_WORKSPACE")


def image_settings(build_args: Mapping[str, str]) -> dict[str, str]:
    """What per-arch builds made elsewhere must agree on before `inv merge` joins them."""
    return {k: v for k, v in sorted(build_args.items()) if k not in MACHINE_ARGS}


def human_size(n: int) -> str:
    if n <= 0:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_seconds(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s" if s >= 60 else f"{s:.1f}s"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def summary_table(results: Sequence[ArchResult]) -> str:
    rows = [(r.label, r.triple, "ok" if r.ok else "FAILED",
             (r.digest[:19] + "…") if r.digest else "-", human_size(r.size), human_seconds(r.seconds))
            for r in results]
    return format_table(("platform", "rust target", "status", "digest", "size", "time"), rows)


class MergeError(CrossdockError):
    """Per-arch reports that cannot be joined; the message names which and why."""


@dataclass(frozen=True)
class MergePlan:
    repository: str
    tag: str
    platforms: tuple[dict[str, Any], ...]  # the per-arch entries of the reports, in the requested order
    base: dict[str, Any]  # the first report: project, version, revision, ... for the merged report


def plan_merge(reports: Sequence[tuple[str, Mapping[str, Any]]], wanted: Sequence[Platform]) -> MergePlan:
    """Check per-arch build reports (name, parsed JSON) made on other machines before joining them: all
    succeeded, all from the same commit, repository, tag and image settings, every wanted platform
    exactly once and no other. Pure."""
    if not reports:
        raise MergeError("no build reports given: pass each per-arch job's out/build-report.json with --report")
    problems: list[str] = []
    first_name, first = reports[0]
    for key, what in (("revision", "commit"), ("repository", "repository"), ("tag", "tag"),
                      ("settings", "image settings"), ("image", "image spec"), ("output", "output")):
        for name, report in reports[1:]:
            if report.get(key) != first.get(key):
                detail = (f"{first.get(key)!r} vs {report.get(key)!r}" if key not in ("settings", "image") else
                          ", ".join(sorted(k for k in set(first.get(key) or {}) | set(report.get(key) or {})
                                           if (first.get(key) or {}).get(k) != (report.get(key) or {}).get(k))))
                problems.append(f"{name} and {first_name} differ in {what}: {detail}")
    if first.get("output") != "push":
        problems.append(f"{first_name} was built with --output={first.get('output')}: only pushed arches can be joined")
    seen: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name, report in reports:
        for p in report.get("platforms") or []:
            if not p.get("ok") or not str(p.get("digest", "")).startswith("sha256:"):
                problems.append(f"{p.get('platform')} failed in {name}: {p.get('error') or 'no digest'}")
            elif p.get("platform") in seen:
                problems.append(f"{p['platform']} is in both {seen[p['platform']]} and {name}")
            else:
                seen[p["platform"]] = name
                entries[p["platform"]] = dict(p)
    wanted_names = [p.docker for p in wanted]
    missing = [w for w in wanted_names if w not in seen]
    extra = [s for s in seen if s not in wanted_names]
    if missing:
        problems.append(f"no report has {', '.join(missing)}")
    if extra:
        problems.append(f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not among the platforms to join "
                        f"({', '.join(wanted_names)}; --platforms)")
    if problems:
        raise MergeError("cannot join these reports (nothing was tagged):\n" + "\n".join(f"  {p}" for p in problems))
    return MergePlan(repository=str(first["repository"]), tag=str(first["tag"]),
                     platforms=tuple(entries[w] for w in wanted_names), base=dict(first))
