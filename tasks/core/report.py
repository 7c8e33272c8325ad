"""Typed results of a build (turned into JSON only for the report file) and the summary tables. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    @property
    def label(self) -> str:
        """What the tables call this row: the Docker platform (``linux/arm/v7``)."""
        return self.platform.docker

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform.docker, "name": self.platform.name, "rust_target": self.triple,
                "ok": self.ok, "digest": self.digest, "reference": self.reference, "size": self.size,
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
            "seconds": round(self.seconds, 1),
            "platforms": [a.to_json() for a in self.arches],
        }


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
