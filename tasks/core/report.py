"""Summary tables and the JSON build report. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArchResult:
    platform: str  # docker platform, e.g. linux/arm64
    name: str  # table name, e.g. arm64
    triple: str
    ok: bool
    digest: str = ""
    reference: str = ""  # where the per-arch image can be pulled (tag or digest)
    size: int = 0  # bytes; 0 = unknown
    seconds: float = 0.0
    log: str = ""
    error: str = ""


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
    rows = [(r.platform, r.triple, "ok" if r.ok else "FAILED",
             (r.digest[:19] + "…") if r.digest else "-", human_size(r.size), human_seconds(r.seconds))
            for r in results]
    return format_table(("platform", "rust target", "status", "digest", "size", "time"), rows)


def build_report(*, results: Sequence[ArchResult], manifest_ref: str, manifest_digest: str, joined: bool,
                 output: str, project: str, bin: str, build_args: dict[str, str], package_version: str,
                 seconds: float) -> dict[str, Any]:
    """``joined``: the manifest list was created (or none was asked for, in load mode)."""
    return {
        "ok": all(r.ok for r in results) and bool(results) and joined,
        "project": project,
        "bin": bin,
        "version": build_args["VERSION"],
        "package_version": package_version,
        "revision": build_args["VCS_REF"],
        "created": build_args["DATE"],
        "source": build_args["SOURCE_URL"],
        "output": output,
        "manifest": {"reference": manifest_ref, "digest": manifest_digest},
        "seconds": round(seconds, 1),
        "platforms": [
            {"platform": r.platform, "name": r.name, "rust_target": r.triple, "ok": r.ok,
             "digest": r.digest, "reference": r.reference, "size": r.size,
             "seconds": round(r.seconds, 1), "log": r.log, "error": r.error}
            for r in results
        ],
    }
