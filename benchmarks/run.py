"""crossdock benchmarks: cross-compiling vs native vs emulated, side by side in one run, as ratios.

    .venv/bin/python benchmarks/run.py            # after scripts/provision-local.sh
    .venv/bin/python benchmarks/run.py --quick    # one repetition, example workload only

Every number comes from this run on this machine, and the table shows medians and ratios of rows
measured together (these machines are shared and noisy: absolute seconds mean little). Nothing here
asserts a time. Writes benchmarks/results.md and benchmarks/results.json.

"cold" = an empty cargo target dir and no cached compile step (each cold run builds a fresh copy of the
workload, which gets its own target dir); the toolchain layers (rustc-web and the cross gcc, the same
for every build) are warmed once beforehand and not timed. "warm (one-line change)" = the same copy
rebuilt after one line of the binary crate changed: only that crate recompiles, the library crates come
from the target dir cache. "no change" = the same copy rebuilt as is. "fully cold" (heavy workload,
once each) = after `docker builder prune -af`: no layer, no apt cache, no target dir; the toolchain
installs are part of the time, as on a user's first build. "emulated" builds the same arm64 image the
naive way (benchmarks/Dockerfile.emulated): the compile stage FROM the target platform, so apt, rustc
and cargo run under QEMU; it gets a target dir cache mount too, so its warm row is a fair one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SUITE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SUITE))

from benchmarks.workload import BIN as HEAVY_BIN  # noqa: E402
from benchmarks.workload import generate, line_count  # noqa: E402

INV = [sys.executable, "-m", "invoke", "--search-root", str(SUITE), "-f", str(SUITE / "local-world.yaml")]
REGISTRY = "127.0.0.1:5000"
BASE = f"{REGISTRY}/crossdock/debian:bookworm"
EMULATED_DOCKERFILE = SUITE / "benchmarks" / "Dockerfile.emulated"


class PeakRss:
    """The largest resident set of any single process on the machine while a command runs (sampled)."""

    def __init__(self, every: float = 0.5):
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    for line in status.read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]) * 1024)
                            break
                except OSError:
                    continue
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Row:
    seconds: list[float] = field(default_factory=list)
    peak_rss: int = 0
    compile: list[float] = field(default_factory=list)  # BuildKit's time for the cargo step (slowest arch)
    toolchain: list[float] = field(default_factory=list)  # BuildKit's time for the toolchain install steps
    cook: list[float] = field(default_factory=list)  # BuildKit's time for the dependency layers' steps

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


COMPILE_STEP = re.compile(r"(crossdock-platform|platform\.sh) build|cargo build")
TOOLCHAIN_STEP = re.compile(r"(crossdock-platform|platform\.sh) (toolchain|install)|apt-get install")


def step_seconds(log_text: str, pattern: re.Pattern[str]) -> float:
    """Seconds BuildKit reports (`#N DONE 12.3s`, --progress plain) for the steps whose RUN line matches;
    0 when they were cached or absent."""
    ids = {m.group(1) for m in re.finditer(r"^#(\d+) \[[^\]]+\] RUN (.*)$", log_text, re.M)
           if pattern.search(m.group(2))}
    return sum(float(m.group(2)) for m in re.finditer(r"^#(\d+) DONE ([0-9.]+)s", log_text, re.M)
               if m.group(1) in ids)


def timed(argv: list[str], *, log: Path | None = None, sample_rss: bool = True) -> tuple[float, int]:
    """Seconds and the peak RSS of a command; ``sample_rss=False`` for sub-second commands, whose time the
    sampler's scans of /proc (on the same two cores) would be part of."""
    with PeakRss() if sample_rss else contextlib.nullcontext(PeakRss()) as rss:
        t0 = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.monotonic() - t0
    if log:
        log.write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(argv)}\n{(r.stdout + r.stderr)[-3000:]}")
    return seconds, rss.peak


def fresh_copy(source: Path, work: Path) -> Path:
    """A new directory (new target dir for crossdock's cache key), committed in its own git repo. Every Rust
    file gets a line naming the copy: BuildKit keys the dependency layers by content, so an identical copy
    would find the workspace's crates compiled by an earlier copy, and a cold build would not be cold."""
    name = f"copy-{uuid.uuid4().hex[:8]}"
    dest = work / name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target"))
    for rs in dest.rglob("*.rs"):
        rs.write_text(rs.read_text() + f"// {name}\n")
    (dest / ".gitignore").write_text("target/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=b@example.invalid", "-c", "user.name=bench", "commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return dest


def inv_build(project: Path, platforms: str, work: Path, *, dry: bool = False, extra: tuple[str, ...] = ()
              ) -> list[str]:
    return [*INV, *(["--dry"] if dry else []), "build", f"--platforms={platforms}", f"--project={project}",
            "--image=bench/crossdock", f"--tag=bench-{uuid.uuid4().hex[:6]}", f"--out-dir={work / 'out'}", *extra]


def raw_script(project: Path, platforms: str, work: Path) -> Path:
    """The exact commands `inv build` runs (from its --dry output), as a plain shell script."""
    from tasks.steps.build import stage_build_files

    stage_build_files(project)  # what `inv build` does before its commands (not timed here either)
    out = subprocess.run(inv_build(project, platforms, work, dry=True), capture_output=True, text=True,
                         check=True).stdout
    builds = [line for line in out.splitlines() if line.startswith("docker buildx build ")]
    pushes = [line for line in out.splitlines() if line.startswith("skopeo copy ")]
    join = next(line for line in out.splitlines() if line.startswith("docker buildx imagetools create "))
    script = work / f"raw-{uuid.uuid4().hex[:6]}.sh"
    lines = ["#!/bin/sh", "set -e", "cd " + str(project)]
    logs = work / "out" / "build"
    lines.append(f"mkdir -p {logs}")
    # A build that exports an OCI archive (timestamps rewritten with the docker driver) is pushed by the
    # skopeo command that names its archive, as `inv build` runs it.
    # The joint compile (one cargo for every platform) first, as `inv build` runs it; then the platforms at once.
    for b in [b for b in builds if "--target joint-out " in b]:
        lines.append(f"{b} >{logs}/sh-joint.log 2>&1")
    builds = [b for b in builds if "--target joint-out " not in b]
    for i, b in enumerate(builds):
        archive = b.split("type=oci,dest=")[1].split(",")[0] if "type=oci,dest=" in b else ""
        push = next((f" && {p}" for p in pushes if archive and f"oci-archive:{archive} " in p), "")
        lines.append(f"({b}{push}) >{logs}/sh-{i}.log 2>&1 &")
    lines.append("wait")
    # The digests come from the metadata files, as crossdock reads them.
    lines.append("join=" + json.dumps(join))
    for b in builds:
        meta = b.split("--metadata-file ")[1].split()[0]
        plat = b.split("--platform ")[1].split()[0]
        lines.append(f'd=$(python3 -c "import json;print(json.load(open(\'{meta}\'))[\'containerimage.digest\'])")')
        lines.append(f'join=$(printf %s "$join" | sed "s|<digest of {plat}>|$d|")')
    lines.append('sh -c "$join" >/dev/null')
    script.write_text("\n".join(lines) + "\n")
    return script


def emulated_build(project: Path, bin_name: str, package: str, *, cache_key: str = "",
                   toolchain_only: bool = False) -> list[str]:
    argv = ["docker", "buildx", "build", "--platform", "linux/arm64", "--file", str(EMULATED_DOCKERFILE),
            "--provenance", "false", "--build-arg", f"BUILDER_IMAGE={BASE}", "--build-arg", f"RUNTIME_IMAGE={BASE}",
            "--build-arg", f"BIN={bin_name}", "--build-arg", f"PACKAGE={package}",
            "--build-arg", f"CACHE_KEY={cache_key or uuid.uuid4().hex[:8]}", "--output", "type=image,push=false"]
    if toolchain_only:
        argv += ["--target", "toolchain"]
    return [*argv, str(project)]


def one_line_change(project: Path, edit_file: Path, i: int) -> None:
    """Change one line of the binary crate (a comment marker and the line opening main)."""
    text = (project / edit_file).read_text()
    (project / edit_file).write_text(text.replace("// EDIT-ME", f"// EDIT-ME {i}").replace(
        "fn main() -> ExitCode {", f"fn main() -> ExitCode {{ // edit {i}", 1))


def prune_build_cache(*, cache_mounts_only: bool = False) -> None:
    """Every layer and cache mount the builder `inv build` uses holds (toolchains, apt caches, cargo target
    dirs) goes: every project's build cache on that builder, not only the benchmark's. With
    ``cache_mounts_only`` the layers stay (toolchains warm) and only the cache mounts go: the target dirs that
    cold builds of new copies leave behind, which nothing reads again (a run of the jobserver rows would
    otherwise fill the disk)."""
    from dotenv import dotenv_values  # as tasks.py reads it: the environment first, then the suite's .env

    builder = os.environ.get("CROSSDOCK_BUILDER") or dotenv_values(SUITE / ".env").get("CROSSDOCK_BUILDER") or ""
    subprocess.run(["docker", "buildx", "prune", "-f",
                    *(["--filter", "type=exec.cachemount"] if cache_mounts_only else ["-a"]),
                    *(["--builder", builder] if builder else [])], check=True, capture_output=True)


def versions() -> dict[str, str]:
    def out(argv: list[str]) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout.strip()
    mem = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")), 0)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": str(os.cpu_count()),
            "memory": f"{mem / 2**30:.0f} GiB", "machine": platform.machine(),
            "engine": out(["docker", "version", "--format", "{{.Server.Version}}"]),
            "buildx": out(["docker", "buildx", "version"])}


def measure(workload: str, source: Path, bin_name: str, package: str, edit_file: Path, work: Path, *,
            repeat: int, emulated_repeat: int, fully_cold: bool, log_dir: Path,
            done: Callable[[dict[str, Row]], None] = lambda rows: None) -> dict[str, Row]:
    rows: dict[str, Row] = {}

    build_logs = work / "out" / "build"  # inv's per-arch logs, and the shell script's

    def run(name: str, argv: list[str]) -> None:
        row = rows.setdefault(name, Row())
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        log = log_dir / f"{workload}-{slug}-{len(row.seconds)}.log"
        for old in build_logs.glob("*.log"):
            old.unlink()
        seconds, rss = timed(argv, log=log)
        texts = [log.read_text(errors="replace")] + [f.read_text(errors="replace") for f in build_logs.glob("*.log")]
        row.seconds.append(seconds)
        row.peak_rss = max(row.peak_rss, rss)
        row.compile.append(max(step_seconds(t, COMPILE_STEP) for t in texts))
        row.toolchain.append(max(step_seconds(t, TOOLCHAIN_STEP) for t in texts))
        print(f"  {workload:8} {name:38} {seconds:7.1f}s  compile step {row.compile[-1]:6.1f}s  "
              f"toolchain {row.toolchain[-1]:6.1f}s  peak process {rss / 2**20:5.0f} MiB", flush=True)

    # Warm the shared toolchain layers (not timed): the same for every row.
    timed(inv_build(fresh_copy(source, work), "amd64,arm64,arm", work))
    for i in range(repeat):
        # cold = a new project copy (its own, empty target dirs); warm = the same copy after a one-line
        # change in the binary crate, so only that crate recompiles (the libraries come from the cache).
        for label, platforms in (("native amd64", "amd64"), ("cross arm64", "arm64"),
                                 ("3 platforms", "amd64,arm64,arm")):
            project = fresh_copy(source, work)
            run(f"{label}, cold", inv_build(project, platforms, work))
            one_line_change(project, edit_file, i)
            run(f"{label}, warm (one-line change)", inv_build(project, platforms, work))
            if label == "cross arm64":
                run("cross arm64, no change", inv_build(project, platforms, work))
        # The same three platforms with every compile step running at once (the default lets one cargo
        # compile at a time on the daemon, each using all cores; the other steps overlap either way).
        run("3 platforms, cold, no compile limit",
            inv_build(fresh_copy(source, work), "amd64,arm64,arm", work,
                      extra=("--compile-slots=0", "--compile-tokens=0")))
    for i in range(repeat):
        inv_project, shell_project = fresh_copy(source, work), fresh_copy(source, work)
        for k, state in enumerate(("cold", "no change")):
            pair = [(f"inv build amd64,arm64, {state}", inv_build(inv_project, "amd64,arm64", work)),
                    (f"same commands from sh, {state}", ["sh", str(raw_script(shell_project, "amd64,arm64", work))])]
            for name, argv in pair[::1 if (i + k) % 2 == 0 else -1]:  # alternate which goes first
                run(name, argv)
        run("inv --dry build", inv_build(inv_project, "amd64,arm64", work, dry=True))
    done(rows)
    if emulated_repeat:
        timed(emulated_build(fresh_copy(source, work), bin_name, package, toolchain_only=True))  # warm, not timed
        for i in range(emulated_repeat):
            project, key = fresh_copy(source, work), uuid.uuid4().hex[:8]
            run("emulated arm64, cold", emulated_build(project, bin_name, package, cache_key=key))
            one_line_change(project, edit_file, i)
            run("emulated arm64, warm (one-line change)", emulated_build(project, bin_name, package, cache_key=key))
        done(rows)
    if fully_cold:
        # No build cache at all: the toolchain (apt installs of rustc and the cross gcc, or under QEMU for the
        # emulated build) is part of the time, as on a user's first build.
        for label, argv in (("native amd64", inv_build(fresh_copy(source, work), "amd64", work)),
                            ("cross arm64", inv_build(fresh_copy(source, work), "arm64", work)),
                            *((("emulated arm64", emulated_build(fresh_copy(source, work), bin_name, package)),)
                              if emulated_repeat else ())):
            prune_build_cache()
            run(f"{label}, fully cold", argv)
        done(rows)
    return rows


# (row, label, numerator, denominator): the ratios printed beside a row, each of rows measured in this run.
RATIOS = [
    ("cross arm64, cold", "cross / native", "cross arm64, cold", "native amd64, cold"),
    ("cross arm64, warm (one-line change)", "cross / native", "cross arm64, warm (one-line change)",
     "native amd64, warm (one-line change)"),
    ("cross arm64, warm (one-line change)", "one-line / cold", "cross arm64, warm (one-line change)",
     "cross arm64, cold"),
    ("cross arm64, no change", "no change / cold", "cross arm64, no change", "cross arm64, cold"),
    ("3 platforms, cold", "3 platforms / native", "3 platforms, cold", "native amd64, cold"),
    ("3 platforms, warm (one-line change)", "3 platforms / native", "3 platforms, warm (one-line change)",
     "native amd64, warm (one-line change)"),
    ("3 platforms, cold, no compile limit", "3 platforms / native", "3 platforms, cold, no compile limit",
     "native amd64, cold"),
    ("3 platforms, cold, no compile limit", "no limit / jobserver", "3 platforms, cold, no compile limit",
     "3 platforms, cold"),
    ("emulated arm64, cold", "emulated / cross", "emulated arm64, cold", "cross arm64, cold"),
    ("emulated arm64, warm (one-line change)", "emulated / cross", "emulated arm64, warm (one-line change)",
     "cross arm64, warm (one-line change)"),
    ("inv build amd64,arm64, cold", "inv / sh", "inv build amd64,arm64, cold", "same commands from sh, cold"),
    ("inv build amd64,arm64, no change", "inv / sh", "inv build amd64,arm64, no change",
     "same commands from sh, no change"),
    ("cross arm64, fully cold", "cross / native", "cross arm64, fully cold", "native amd64, fully cold"),
    ("emulated arm64, fully cold", "emulated / cross", "emulated arm64, fully cold", "cross arm64, fully cold"),
]


def ratios_for(name: str, rows: dict[str, Row]) -> list[tuple[str, float]]:
    out = []
    for row, label, a, b in RATIOS:
        if row == name and rows.get(a) and rows.get(b) and rows[a].seconds and rows[b].seconds:
            value = rows[a].median / rows[b].median
            out.append((label, value))
            if label == "3 platforms / native":  # also against three separate single-platform builds
                out.append(("of 3 separate builds", value / 3))
    return out


def table(all_rows: dict[str, dict[str, Row]]) -> tuple[str, list[dict]]:
    lines = ["| workload | measurement | runs | median | ratios | compile step | toolchain steps | peak process RSS |",
             "|---|---|---|---|---|---|---|---|"]
    data = []
    for workload, rows in all_rows.items():
        for name, row in rows.items():
            ratios = ratios_for(name, rows)
            shown = "; ".join(f"{label} {value:.2f}" for label, value in ratios)
            compile_s, toolchain_s = statistics.median(row.compile), statistics.median(row.toolchain)
            lines.append(f"| {workload} | {name} | {len(row.seconds)} | {row.median:.1f} s | {shown} | "
                         f"{compile_s:.1f} s | {toolchain_s:.1f} s | {row.peak_rss / 2**20:.0f} MiB |")
            data.append({"workload": workload, "measurement": name, "seconds": row.seconds, "median": row.median,
                         "ratios": {label: round(value, 4) for label, value in ratios}, "peak_rss": row.peak_rss,
                         "compile_step": row.compile, "toolchain_steps": row.toolchain})
    return "\n".join(lines), data


def write_results(out: Path, info: dict, lines_of_rust: dict, all_rows: dict[str, dict[str, Row]], *,
                  final: bool) -> str:
    text, data = table(all_rows)
    header = (f"Measured {info['date']} on {info['cores']} cores / {info['memory']} ({info['machine']}), "
              f"Docker engine {info['engine']}, {info['buildx']}. Workloads: "
              + ", ".join(f"{w} ({n} lines of Rust)" for w, n in lines_of_rust.items())
              + f". Command: `{' '.join(['.venv/bin/python benchmarks/run.py', *sys.argv[1:]])}`."
              + ("" if final else " PARTIAL: the run was still going when this was written."))
    out.mkdir(parents=True, exist_ok=True)
    fixed_cost, joint = out / "fixed-cost.md", out / "joint.md"
    body = header + "\n\n" + text + "\n"
    if joint.exists():
        body = with_joint(body, joint.read_text())
    (out / "results.md").write_text(with_fixed_cost(body, fixed_cost.read_text()) if fixed_cost.exists() else body)
    (out / "results.json").write_text(json.dumps({"info": info, "lines_of_rust": lines_of_rust, "final": final,
                                                  "rows": data}, indent=2) + "\n")
    return header + "\n\n" + text


FIXED_COST_GOALS = {"inv build amd64,arm64, no change": ("inv / sh", 1.10),
                    "inv --dry build": ("seconds", 0.30)}


def measure_fixed_cost(work: Path, *, repeat: int) -> dict[str, Row]:
    """crossdock's own cost per run on the example: a no-change rebuild by `inv build` against the same
    buildx commands from a shell script (the order alternates), and `inv --dry build`."""
    rows: dict[str, Row] = {}

    def run(name: str, argv: list[str]) -> None:
        seconds, rss = timed(argv, sample_rss=False)
        row = rows.setdefault(name, Row())
        row.seconds.append(seconds)
        row.compile.append(0.0)
        row.toolchain.append(0.0)
        row.peak_rss = max(row.peak_rss, rss)
        print(f"  fixed cost {name:38} {seconds:6.2f}s", flush=True)

    project, shell_project = fresh_copy(SUITE / "example", work), fresh_copy(SUITE / "example", work)
    timed(inv_build(project, "amd64,arm64", work))  # cold builds first, not timed
    script = raw_script(shell_project, "amd64,arm64", work)
    timed(["sh", str(script)])
    for i in range(repeat):
        pair = [("inv build amd64,arm64, no change", inv_build(project, "amd64,arm64", work)),
                ("same commands from sh, no change", ["sh", str(script)])]
        for name, argv in pair[::1 if i % 2 == 0 else -1]:
            run(name, argv)
        for _ in range(DRY_RUNS_PER_ROUND):  # sub-second: more samples against the machine's noise
            run("inv --dry build", inv_build(project, "amd64,arm64", work, dry=True))
            for name, argv in FIXED_COST_FLOORS.items():
                run(name, argv)
    return rows


DRY_RUNS_PER_ROUND = 3
# What any `inv --dry build` pays before crossdock's own code runs: the interpreter with invoke imported.
# Measured beside the dry run, it shows how much of it is crossdock's (the engine is asked over its socket
# and git by its CLI inside that part).
FIXED_COST_FLOORS = {
    "floor: python -m invoke --version": [sys.executable, "-m", "invoke", "--version"],
}


def write_fixed_cost(out: Path, info: dict, rows: dict[str, Row]) -> str:
    lines = [f"Fixed cost, measured {info['date']} on {info['cores']} cores ({info['machine']}), Docker engine "
             f"{info['engine']}, with the example (`.venv/bin/python benchmarks/run.py --fixed-cost`): medians of "
             f"{len(next(iter(rows.values())).seconds)} runs, `inv` and `sh` alternating (the dry run and its "
             f"floor: {DRY_RUNS_PER_ROUND} in each of those rounds).", "",
             "| measurement | median | measured | goal | met |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        goal = FIXED_COST_GOALS.get(name)
        if goal and goal[0] == "inv / sh":
            value = row.median / rows["same commands from sh, no change"].median
            lines.append(f"| {name} | {row.median:.2f} s | inv / sh {value:.2f} | <= {goal[1]:.2f} | "
                         f"{'yes' if value <= goal[1] else 'no'} |")
        elif goal:
            lines.append(f"| {name} | {row.median:.2f} s | {row.median:.2f} s | <= {goal[1]:.2f} s | "
                         f"{'yes' if row.median <= goal[1] else 'no'} |")
        else:
            lines.append(f"| {name} | {row.median:.2f} s | | | |")
    floor = sum(rows[name].median for name in FIXED_COST_FLOORS if name in rows)
    if floor and "inv --dry build" in rows:
        dry = rows["inv --dry build"]
        lines += ["", f"The floor is {floor:.2f} s of the dry run's {dry.median:.2f} s (crossdock's own part: "
                  f"{dry.median - floor:.2f} s); the dry run's {len(dry.seconds)} runs took "
                  f"{min(dry.seconds):.2f}-{max(dry.seconds):.2f} s."]
    text = "\n".join(lines)
    (out / "fixed-cost.md").write_text(text + "\n")
    results = out / "results.md"
    if results.exists():
        results.write_text(with_fixed_cost(results.read_text(), text))
    return text


FIXED_COST_MARK = "**Fixed cost against its goals** (the latest `--fixed-cost` run, `benchmarks/fixed-cost.md`):"


def with_fixed_cost(results: str, fixed_cost: str) -> str:
    """results.md with its closing fixed-cost section replaced by (or given) ``fixed_cost``: the full run's
    table and the two fixed-cost goals in one place, each with its own date and engine."""
    head = results.split(FIXED_COST_MARK)[0].rstrip()
    return f"{head}\n\n{FIXED_COST_MARK}\n\n{fixed_cost.strip()}\n"


FRESH_RUNNER_GOAL = 0.25  # a one-line change built with the registry cache, of a cold build
COOK_STEP = re.compile(r"(crossdock-platform|platform\.sh) cook")
FRESH_RUNNER_ROWS = (  # (row, what the build does, cache setting; every row starts right after a prune)
    ("cold, no cache", "the heavy workspace on an empty builder, no registry cache", "off"),
    ("cold, exporting the cache", "the same, writing the registry cache (--cache=on)", "on"),
    ("one-line change, importing the cache", "after a one-line change in the binary crate, reading the cache "
     "the build above wrote (--cache=read: --cache-from only)", "read"),
    ("one-line change, importing and exporting", "the same with --cache=on (--cache-from and --cache-to), as a "
     "main-branch CI job runs it", "on"),
)


def measure_fresh_runner(work: Path, *, items: int, platforms: str, log_dir: Path,
                         prune: Callable[[], None] = prune_build_cache) -> dict[str, Row]:
    """The heavy workspace on runners that start empty, one build each after `docker buildx prune -af` (no
    layer, cache mount or toolchain left), side by side: cold without and with exporting the registry cache,
    then a one-line change in the binary crate built from that cache."""
    project = fresh_copy(generate(work / "heavy-source", items=items), work)
    cache = f"bench/fresh-runner-{uuid.uuid4().hex[:8]}"  # a repository no earlier run wrote a cache to
    build_logs = work / "out" / "build"
    rows: dict[str, Row] = {}
    for name, _, setting in FRESH_RUNNER_ROWS:
        if name.startswith("one-line") and not any(n.startswith("one-line") for n in rows):
            one_line_change(project, Path("crates/app/src/main.rs"), 1)
            subprocess.run(["git", "-C", str(project), "-c", "user.email=b@example.invalid", "-c", "user.name=bench",
                            "commit", "-qam", "one-line change"], check=True, capture_output=True)
        prune()
        for old in build_logs.glob("*.log"):
            old.unlink()
        log = log_dir / f"fresh-runner-{re.sub(r'[^a-z0-9]+', '-', name)}.log"
        cache_flag = "--cache=off" if setting == "off" else f"--cache={'read:' if setting == 'read' else ''}{cache}"
        seconds, rss = timed(inv_build(project, platforms, work, extra=(cache_flag,)), log=log)
        texts = [log.read_text(errors="replace")] + [f.read_text(errors="replace") for f in build_logs.glob("*.log")]
        row = rows.setdefault(name, Row())
        row.seconds.append(seconds)
        row.peak_rss = max(row.peak_rss, rss)
        row.compile.append(max(step_seconds(t, COMPILE_STEP) for t in texts))
        row.toolchain.append(max(step_seconds(t, TOOLCHAIN_STEP) for t in texts))
        row.cook.append(max(step_seconds(t, COOK_STEP) for t in texts))
        print(f"  fresh runner {name:42} {seconds:7.1f}s  compile step {row.compile[-1]:6.1f}s  "
              f"dependency layers {row.cook[-1]:6.1f}s  toolchain {row.toolchain[-1]:6.1f}s", flush=True)
    return rows


def write_fresh_runner(out: Path, info: dict, rows: dict[str, Row], *, platforms: str, lines: int) -> str:
    cold = rows["cold, no cache"].median
    text = [f"Fresh runner, measured {info['date']} on {info['cores']} cores ({info['machine']}), Docker engine "
            f"{info['engine']}, {info['buildx']}, the heavy workspace ({lines} lines of Rust) for {platforms} "
            "(`.venv/bin/python benchmarks/run.py --fresh-runner`): each build right after `docker buildx prune "
            "-af`, so no layer, cargo cache mount or toolchain is left, as on a CI runner that starts empty; "
            "the registry cache is on the local registry. The step columns are BuildKit's times for the steps that "
            "ran (0: cached or imported), waits for the compile slot included.", "",
            "| build after a prune | seconds | of cold | goal | compile step | dependency layers | toolchain |",
            "|---|---|---|---|---|---|---|"]
    for name, what, _ in FRESH_RUNNER_ROWS:
        row = rows[name]
        ratio = row.median / cold
        goal = (f"<= {FRESH_RUNNER_GOAL:.2f} ({'met' if ratio <= FRESH_RUNNER_GOAL else 'missed'})"
                if name == "one-line change, importing the cache" else "")
        text.append(f"| {name}: {what} | {row.median:.1f} s | {ratio:.2f} | {goal} | {row.compile[0]:.1f} s | "
                    f"{row.cook[0]:.1f} s | {row.toolchain[0]:.1f} s |")
    result = "\n".join(text)
    (out / "fresh-runner.md").write_text(result + "\n")
    return result


SIZE_GOALS = {"minimal": 1 / 3, "static": 1 / 8}  # of slim


def measure_sizes(work: Path) -> dict[str, dict[str, int]]:
    """The example's image for three platforms in each runtime flavour: compressed bytes per platform."""
    sizes: dict[str, dict[str, int]] = {}
    project = fresh_copy(SUITE / "example", work)
    for flavour in ("slim", "minimal", "static"):
        out = work / f"out-{flavour}"
        argv = [*inv_build(project, "amd64,arm64,arm", work, extra=(f"--runtime={flavour}",))]
        argv = [a if not a.startswith("--out-dir=") else f"--out-dir={out}" for a in argv]
        timed(argv)
        report = json.loads((out / "build-report.json").read_text())
        sizes[flavour] = {p["platform"]: p["size"] for p in report["platforms"]}
        print(f"  sizes {flavour:8} " + ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in sizes[flavour].items()),
              flush=True)
    return sizes


def write_sizes(out: Path, info: dict, sizes: dict[str, dict[str, int]]) -> str:
    platforms = list(sizes["slim"])
    lines = [f"Image sizes of the example, measured {info['date']} (`.venv/bin/python benchmarks/run.py --sizes`): "
             "compressed bytes in the registry (config and layers) per platform, and the ratio to slim.", "",
             "| runtime | " + " | ".join(platforms) + " | of slim (largest ratio) | goal |",
             "|---|" + "---|" * len(platforms) + "---|---|"]
    for flavour, by_platform in sizes.items():
        ratio = max(by_platform[p] / sizes["slim"][p] for p in platforms)
        goal = SIZE_GOALS.get(flavour)
        lines.append(f"| {flavour} | " + " | ".join(f"{by_platform[p] / 2**20:.2f} MiB" for p in platforms)
                     + f" | {ratio:.3f} | " + (f"<= {goal:.3f} ({'met' if ratio <= goal else 'missed'})" if goal
                                              else "") + " |")
    text = "\n".join(lines)
    (out / "image-sizes.md").write_text(text + "\n")
    return text


# --- compile slots against the jobserver (issue 15) -----------------------------------------------------

JOBSERVER_MODES = (  # (mode, inv build flags): today's two modes and the jobserver, side by side
    ("1 slot", ("--compile-slots=1", "--compile-tokens=0")),
    ("no limit", ("--compile-slots=0", "--compile-tokens=0")),
    ("jobserver", ("--compile-tokens=auto",)),
)
JOBSERVER_GOAL = 0.90  # the jobserver's median, of the better of the two slot modes' medians
JOBSERVER_WORKLOADS = {  # name: what it is
    "heavy": "the generated heavy workspace (benchmarks/workload.py), release profile as generated",
    "heavy-lto": "the same with lto = true and codegen-units = 1 in its release profile",
    "crates": "a CLI on clap (derive), regex, serde (derive) and serde_json vendored from Debian's librust-*-dev "
              "packages, lto = true and codegen-units = 1",
}
WAITED = re.compile(r"waited ([0-9.]+)s for a compile (?:token|slot)")


@dataclass
class ModeRow:
    seconds: list[float] = field(default_factory=list)
    compile: dict[str, list[float]] = field(default_factory=dict)  # arch: the compile steps' own time per run
    waited: dict[str, list[float]] = field(default_factory=dict)  # arch: time waiting for a token or slot per run

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def cold_copy(source: Path, work: Path) -> Path:
    """A new directory with every Rust file and manifest naming it, vendored crates left as they are (their
    checksums): no dependency layer and no target dir of an earlier copy fits it, so its build is cold."""
    name = f"copy-{uuid.uuid4().hex[:8]}"
    dest = work / name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target", "vendor"))
    for path in [*dest.rglob("*.rs"), *dest.rglob("Cargo.toml")]:
        path.write_text(path.read_text() + ("// " if path.suffix == ".rs" else "# ") + name + "\n")
    if (source / "vendor").is_dir():
        shutil.copytree(source / "vendor", dest / "vendor")
    (dest / ".gitignore").write_text("target/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=b@example.invalid", "-c", "user.name=bench", "commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return dest


def arch_compile_seconds(log_text: str) -> tuple[float, float]:
    """(the compile steps' own time, the time they waited for a token or slot) in one arch's build log: the
    dependency layers' and the build's cargo steps as BuildKit timed them, less the waits platform.sh
    printed."""
    waited = sum(float(m.group(1)) for m in WAITED.finditer(log_text))
    steps = step_seconds(log_text, COMPILE_STEP) + step_seconds(log_text, COOK_STEP)
    return max(steps - waited, 0.0), waited


def jobserver_source(workload: str, work: Path, *, items: int) -> tuple[Path, str]:
    from benchmarks.real_crates import CRATES_BIN, crates_project, lto_workspace

    if workload == "heavy":
        return generate(work / "heavy-source", items=items), HEAVY_BIN
    if workload == "heavy-lto":
        return lto_workspace(work / "heavy-lto-source", items=items), HEAVY_BIN
    if workload == "crates":
        return crates_project(work / "crates-source", vendor_cache=work / "debian-crates"), CRATES_BIN
    raise SystemExit(f"unknown jobserver workload {workload!r}: {', '.join(JOBSERVER_WORKLOADS)}")


def measure_jobserver(work: Path, *, workloads: list[str], platforms: str, repeat: int, items: int,
                      log_dir: Path) -> dict[str, dict[str, ModeRow]]:
    """Each workload cold (a new copy: no dependency layer, no target dir) for ``platforms`` at once, in each
    mode; the modes' order turns with every repetition, so drift of the machine spreads over all of them."""
    build_logs = work / "out" / "build"
    result: dict[str, dict[str, ModeRow]] = {}
    for workload in workloads:
        source, _ = jobserver_source(workload, work, items=items)
        timed(inv_build(cold_copy(source, work), platforms, work))  # toolchain layers warm, not timed
        rows = result.setdefault(workload, {})
        for i in range(repeat):
            modes = JOBSERVER_MODES[i % len(JOBSERVER_MODES):] + JOBSERVER_MODES[:i % len(JOBSERVER_MODES)]
            for mode, flags in modes:
                for old in build_logs.glob("*.log"):
                    old.unlink()
                prune_build_cache(cache_mounts_only=True)
                log = log_dir / f"jobserver-{workload}-{mode.replace(' ', '-')}-{i}.log"
                seconds, _ = timed(inv_build(cold_copy(source, work), platforms, work, extra=flags), log=log)
                row = rows.setdefault(mode, ModeRow())
                row.seconds.append(seconds)
                for arch_log in sorted(build_logs.glob("*.log")):
                    shutil.copyfile(arch_log, log.with_name(f"{log.stem}-{arch_log.name}"))  # kept for a look later
                    own, waited = arch_compile_seconds(arch_log.read_text(errors="replace"))
                    row.compile.setdefault(arch_log.stem, []).append(own)
                    row.waited.setdefault(arch_log.stem, []).append(waited)
                print(f"  jobserver {workload:9} {mode:9} {seconds:7.1f}s  compile "
                      + ", ".join(f"{a} {v[-1]:.0f}s" for a, v in row.compile.items()) + "  waited "
                      + ", ".join(f"{a} {v[-1]:.0f}s" for a, v in row.waited.items()), flush=True)
    return result


def jobserver_table(rows: dict[str, dict[str, ModeRow]]) -> tuple[str, list[dict]]:
    lines = ["| workload | mode | runs | median | of the better slot mode | goal | compile steps' own time per arch "
             "(median) | waited for a token or slot per arch (median) |", "|---|---|---|---|---|---|---|---|"]
    data = []
    for workload, modes in rows.items():
        best = min(modes[m].median for m in ("1 slot", "no limit") if m in modes)
        for mode, row in modes.items():
            ratio = row.median / best
            goal = (f"<= {JOBSERVER_GOAL:.2f} ({'met' if ratio <= JOBSERVER_GOAL else 'missed'})"
                    if mode == "jobserver" else "")
            compile_s = ", ".join(f"{a} {statistics.median(v):.1f} s" for a, v in row.compile.items())
            waited = ", ".join(f"{a} {statistics.median(v):.1f} s" for a, v in row.waited.items())
            lines.append(f"| {workload} | {mode} | {len(row.seconds)} | {row.median:.1f} s | {ratio:.2f} | {goal} | "
                         f"{compile_s} | {waited} |")
            data.append({"workload": workload, "mode": mode, "seconds": row.seconds, "median": row.median,
                         "of_best_slot_mode": round(ratio, 4), "compile_own": row.compile, "waited": row.waited})
    return "\n".join(lines), data


def write_jobserver(out: Path, info: dict, rows: dict[str, dict[str, ModeRow]], *, platforms: str,
                    lines_of_rust: dict[str, int]) -> str:
    table_text, data = jobserver_table(rows)
    header = (f"Compile slots against the jobserver, measured {info['date']} on {info['cores']} cores / "
              f"{info['memory']} ({info['machine']}), Docker engine {info['engine']}, {info['buildx']} "
              f"(`{' '.join(['.venv/bin/python benchmarks/run.py', *sys.argv[1:]])}`): each workload cold for "
              f"{platforms} at once (a new copy of it, the builder's cache mounts pruned before each build, "
              "toolchain layers warm), with one compile step at a time (`--compile-slots=1`, the default before the "
            "jobserver), every "
              "compile step at once (`--compile-slots=0`) and one jobserver of as many tokens as cores "
              "(`--compile-tokens=auto`); the modes take turns going first. Seconds: the whole `inv build`. "
              "Compile steps' own time: BuildKit's time for an arch's cargo steps (dependency layers and build) "
              "less what they waited for a token or slot. Workloads: "
              + "; ".join(f"{w} ({lines_of_rust.get(w, 0)} lines of Rust of its own): {JOBSERVER_WORKLOADS[w]}"
                          for w in rows) + ".")
    out.mkdir(parents=True, exist_ok=True)
    (out / "jobserver.md").write_text(header + "\n\n" + table_text + "\n")
    (out / "jobserver.json").write_text(json.dumps({"info": info, "platforms": platforms, "rows": data}, indent=2)
                                        + "\n")
    return header + "\n\n" + table_text


def run_jobserver(args: argparse.Namespace, *, out: Path, info: dict | None = None) -> str:
    """The jobserver rows alone (``--jobserver``) or after the full run; written to ``out``/jobserver.md."""
    work = Path(tempfile.mkdtemp(prefix="crossdock-bench-jobserver-"))
    (work / "logs").mkdir()
    info = info or versions()
    workloads = args.jobserver_workloads.split(",")
    print(f"jobserver rows, {info['date']}: {', '.join(workloads)} for {args.jobserver_platforms}, "
          f"{args.repeat} run(s) per mode; logs under {work / 'logs'}", flush=True)
    rows = measure_jobserver(work, workloads=workloads, platforms=args.jobserver_platforms, repeat=args.repeat,
                             items=args.heavy_items, log_dir=work / "logs")
    lines_of_rust = {w: line_count(work / f"{w}-source") for w in workloads if (work / f"{w}-source").is_dir()}
    return write_jobserver(out, info, rows, platforms=args.jobserver_platforms, lines_of_rust=lines_of_rust)


JOINT_GOAL = 0.85  # three platforms cold on the derive-heavy workload: one cargo / one cargo per platform
JOINT_WORKLOADS = {  # name: what it is
    "derive": "a small service on clap (derive), serde (derive), serde_json, regex, tokio (macros, rt), tracing "
              "(attributes) and thiserror vendored from Debian's librust-*-dev packages (five proc-macro crates, "
              "syn, build scripts), default release profile",
    "heavy": "the generated heavy workspace (benchmarks/workload.py): no build script, no proc-macro",
    "example": "the bundled example (no dependency)",
}
JOINT_MODES = (("one cargo", ()), ("per-platform", ("--joint-compile=off",)))
JOINT_MARK = "**One cargo for every platform** (the latest `--joint` run, `benchmarks/joint.md`):"


class CpuBusy:
    """The share of the machine's cores busy (running anything: user, system, interrupts) and the share stolen
    (the hypervisor ran another guest while this one had work: on a shared host, the noise in every timing) while
    a command runs, from the kernel's counters in /proc/stat before and after it: no sampler on the cores being
    measured."""

    busy: float = float("nan")
    stolen: float = float("nan")

    @staticmethod
    def counters() -> tuple[int, int, int]:
        """(all, idle, stolen) ticks of every core since boot: idle counts iowait too."""
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]), idle, fields[7] if len(fields) > 7 else 0

    def __enter__(self) -> CpuBusy:
        self._start = self.counters()
        return self

    def __exit__(self, *exc: object) -> None:
        total, idle, stolen = (end - start for end, start in zip(self.counters(), self._start, strict=True))
        self.busy = (total - idle - stolen) / total if total else float("nan")
        self.stolen = stolen / total if total else float("nan")


@dataclass
class JointRow:
    seconds: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)  # share of the cores busy over each build
    stolen: list[float] = field(default_factory=list)  # share of the cores' time the hypervisor gave elsewhere
    host_units: list[int] = field(default_factory=list)  # units cargo compiled for the build machine, per build
    target_units: list[int] = field(default_factory=list)
    no_change: list[float] = field(default_factory=list)  # the same copy built again right after, as it is

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def build_units(log_dir: Path) -> tuple[int, int]:
    """Units cargo compiled for the build machine and for the targets in one `inv build` (every log it wrote:
    the joint compile's and each platform's), as platform.sh counted them from cargo's messages."""
    from tasks.core.buildx import compiled_units

    host = target = 0
    for log in log_dir.glob("*.log"):
        h, t = compiled_units(log.read_text(errors="replace"))
        host, target = host + h, target + t
    return host, target


def joint_source(workload: str, work: Path, *, items: int) -> Path:
    from benchmarks.real_crates import derive_project

    if workload == "derive":
        return derive_project(work / "derive-source", vendor_cache=work / "debian-derive-crates")
    if workload == "heavy":
        return generate(work / "heavy-source", items=items)
    if workload == "example":
        return SUITE / "example"
    raise SystemExit(f"unknown joint workload {workload!r}: {', '.join(JOINT_WORKLOADS)}")


def measure_joint(work: Path, *, workloads: list[str], platforms: str, repeat: int, items: int,
                  log_dir: Path) -> dict[str, dict[str, JointRow]]:
    """Each workload cold (a new copy, the cache mounts pruned) for ``platforms`` at once, by one cargo and by
    one cargo per platform (both with the jobserver, today's default); the modes take turns going first."""
    build_logs = work / "out" / "build"
    result: dict[str, dict[str, JointRow]] = {}
    for workload in workloads:
        source = joint_source(workload, work, items=items)
        for _, flags in JOINT_MODES:  # each mode's toolchain and cross layers warm, not timed
            timed(inv_build(cold_copy(source, work), platforms, work, extra=flags))
        rows = result.setdefault(workload, {})
        for i in range(repeat):
            modes = JOINT_MODES[i % len(JOINT_MODES):] + JOINT_MODES[:i % len(JOINT_MODES)]
            for mode, flags in modes:
                shutil.rmtree(build_logs, ignore_errors=True)
                prune_build_cache(cache_mounts_only=True)
                log = log_dir / f"joint-{workload}-{mode.replace(' ', '-')}-{i}.log"
                project = cold_copy(source, work)
                with CpuBusy() as cpu:
                    seconds, _ = timed(inv_build(project, platforms, work, extra=flags), log=log, sample_rss=False)
                host, target = build_units(build_logs)
                for arch_log in sorted(build_logs.glob("*.log")):
                    shutil.copyfile(arch_log, log.with_name(f"{log.stem}-{arch_log.name}"))  # kept for a look
                again, _ = timed(inv_build(project, platforms, work, extra=flags), sample_rss=False)
                row = rows.setdefault(mode, JointRow())
                row.no_change.append(again)
                row.seconds.append(seconds)
                row.busy.append(cpu.busy)
                row.stolen.append(cpu.stolen)
                row.host_units.append(host)
                row.target_units.append(target)
                shutil.rmtree(project, ignore_errors=True)
                print(f"  joint {workload:8} {mode:12} {seconds:7.1f}s  cores busy {cpu.busy:.0%} (stolen "
                      f"{cpu.stolen:.0%})  units for the "
                      f"build machine {host}, for the targets {target}; no change {again:.1f}s", flush=True)
    return result


def joint_table(rows: dict[str, dict[str, JointRow]]) -> tuple[str, list[dict]]:
    lines = ["| workload | mode | runs | median | ratio | goal | spread (min-max) | cores busy (median) | stolen "
             "(median) | units compiled for the build machine | for the targets | no-change rebuild (median) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    data = []
    for workload, modes in rows.items():
        per_platform = modes["per-platform"].median if "per-platform" in modes else float("nan")
        for mode, row in modes.items():
            ratio = row.median / per_platform
            shown = f"one cargo / per-platform {ratio:.2f}" if mode == "one cargo" else ""
            goal = (f"<= {JOINT_GOAL:.2f} ({'met' if ratio <= JOINT_GOAL else 'missed'})"
                    if mode == "one cargo" and workload == "derive" else
                    "no worse than the spread" if mode == "one cargo" else "")
            spread = f"{min(row.seconds):.1f}-{max(row.seconds):.1f} s"
            units = sorted(set(row.host_units))
            targets = sorted(set(row.target_units))
            stolen = f"{statistics.median(row.stolen):.0%}" if row.stolen else ""
            lines.append(f"| {workload} | {mode} | {len(row.seconds)} | {row.median:.1f} s | {shown} | {goal} | "
                         f"{spread} | {statistics.median(row.busy):.0%} | {stolen} | {'/'.join(map(str, units))} | "
                         f"{'/'.join(map(str, targets))} | "
                         + (f"{statistics.median(row.no_change):.1f} s |" if row.no_change else "|"))
            data.append({"workload": workload, "mode": mode, "seconds": row.seconds, "median": row.median,
                         "of_per_platform": round(ratio, 4), "cores_busy": row.busy, "stolen": row.stolen,
                         "host_units": row.host_units, "target_units": row.target_units, "no_change": row.no_change})
    return "\n".join(lines), data


def write_joint(out: Path, info: dict, rows: dict[str, dict[str, JointRow]], *, platforms: str,
                lines_of_rust: dict[str, int]) -> str:
    table_text, data = joint_table(rows)
    header = (f"One cargo for every platform against one cargo per platform, measured {info['date']} on "
              f"{info['cores']} cores / {info['memory']} ({info['machine']}), Docker engine {info['engine']}, "
              f"{info['buildx']} (`{' '.join(['.venv/bin/python benchmarks/run.py', *sys.argv[1:]])}`): each "
              f"workload cold for {platforms} at once (a new copy of it, the builder's cache mounts pruned before "
              "each build, toolchain layers warm), by one cargo with every target (`--joint-compile=auto`, the "
              "default) and by one cargo per platform (`--joint-compile=off`, the default before), both with the "
              "jobserver; the modes take turns going first. Seconds: the whole `inv build`. Cores busy: the share "
              "of the machine's cores running anything over the build; stolen: the share the hypervisor gave to "
              "other guests while this one had work, the noise of a shared host (both from /proc/stat). Units: "
              "what cargo compiled (not fresh), counted by platform.sh from cargo's compiler-artifact messages, in "
              "every log of the build (several values: they differed between runs). No-change rebuild: the same "
              "copy built again right after, as it is (every step from the cache). Workloads: "
              + "; ".join(f"{w} ({lines_of_rust.get(w, 0)} lines of Rust of its own): {JOINT_WORKLOADS[w]}"
                          for w in rows) + ".")
    text = header + "\n\n" + table_text
    out.mkdir(parents=True, exist_ok=True)
    (out / "joint.md").write_text(text + "\n")
    (out / "joint.json").write_text(json.dumps({"info": info, "platforms": platforms, "rows": data}, indent=2) + "\n")
    results = out / "results.md"
    if results.exists():
        results.write_text(with_joint(results.read_text(), text))
    return text


def with_joint(results: str, joint: str) -> str:
    """results.md with its joint-compile section replaced by (or given) ``joint``, before the fixed-cost
    section (which stays last)."""
    head, mark, fixed = results.partition(FIXED_COST_MARK)
    head = head.split(JOINT_MARK)[0].rstrip()
    return f"{head}\n\n{JOINT_MARK}\n\n{joint.strip()}\n" + (f"\n{mark}{fixed}" if mark else "")


def run_joint(args: argparse.Namespace, *, out: Path) -> str:
    work = Path(tempfile.mkdtemp(prefix="crossdock-bench-joint-"))
    (work / "logs").mkdir()
    info = versions()
    workloads = args.joint_workloads.split(",")
    print(f"joint compile rows, {info['date']}: {', '.join(workloads)} for {args.joint_platforms}, {args.repeat} "
          f"run(s) per mode; logs under {work / 'logs'}", flush=True)
    rows = measure_joint(work, workloads=workloads, platforms=args.joint_platforms, repeat=args.repeat,
                         items=args.heavy_items, log_dir=work / "logs")
    sources = {"derive": work / "derive-source", "heavy": work / "heavy-source", "example": SUITE / "example"}
    lines_of_rust = {w: sum(len(p.read_text().splitlines()) for p in sources[w].rglob("*.rs")
                            if "vendor" not in p.relative_to(sources[w]).parts) for w in workloads}
    return write_joint(out, info, rows, platforms=args.joint_platforms, lines_of_rust=lines_of_rust)


def add_jobserver_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobserver", action="store_true",
                        help="only the jobserver rows: each jobserver workload cold for three platforms with "
                             "--compile-slots=1, --compile-slots=0 and --compile-tokens=auto, side by side, into "
                             "jobserver.md (the full run adds them too, unless --no-jobserver)")
    parser.add_argument("--no-jobserver", dest="with_jobserver", action="store_false",
                        help="the full run without the jobserver rows")
    parser.add_argument("--jobserver-workloads", default=",".join(JOBSERVER_WORKLOADS),
                        help=f"jobserver workloads (default: {','.join(JOBSERVER_WORKLOADS)})")
    parser.add_argument("--jobserver-platforms", default="amd64,arm64,arm", help="platforms of the jobserver rows")
    parser.add_argument("--jobserver-rehearse", action="store_true",
                        help="with --jobserver: write jobserver.md into the work directory, not --out (a check of "
                             "the benchmark itself, e.g. --repeat 1 --jobserver-workloads crates)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median); default 3")
    parser.add_argument("--emulated-repeat", type=int, default=1,
                        help="runs of the emulated builds (slow: 0 skips them); default 1")
    parser.add_argument("--workloads", default="example,heavy", help="example, heavy or both (default)")
    parser.add_argument("--heavy-items", type=int, default=30, help="generic structs per library crate")
    parser.add_argument("--no-fully-cold", dest="fully_cold", action="store_false",
                        help="skip the fully cold rows (heavy workload only; they empty BuildKit's whole cache "
                             "first, so the next build of anything re-installs its toolchain)")
    parser.add_argument("--quick", action="store_true", help="--repeat 1 --workloads example --no-fully-cold")
    parser.add_argument("--out", type=Path, default=SUITE / "benchmarks", help="where results.md/.json go")
    parser.add_argument("--sizes", action="store_true",
                        help="only the example's image size per runtime flavour (slim, minimal, static), into "
                             "image-sizes.md")
    parser.add_argument("--fixed-cost", action="store_true",
                        help="only crossdock's own cost per run (no-change rebuild vs sh, --dry), into fixed-cost.md")
    parser.add_argument("--fresh-runner", action="store_true",
                        help="only the fresh-runner rows (heavy workspace, each build after `docker buildx prune "
                             "-af`: cold, cold exporting the registry cache, a one-line change importing it), "
                             "into fresh-runner.md. Empties the builder's whole cache")
    parser.add_argument("--fresh-runner-platforms", default="arm64", help="platforms of the fresh-runner rows")
    parser.add_argument("--rehearse", action="store_true",
                        help="with --fresh-runner: run every step but the prunes and write nothing (checks the "
                             "benchmark itself; the numbers are not a fresh runner's)")
    add_jobserver_options(parser)
    parser.add_argument("--joint", action="store_true",
                        help="only the joint-compile rows: each workload cold for three platforms by one cargo and "
                             "by one cargo per platform, side by side, into joint.md and results.md")
    parser.add_argument("--joint-workloads", default=",".join(JOINT_WORKLOADS),
                        help=f"joint-compile workloads (default: {','.join(JOINT_WORKLOADS)})")
    parser.add_argument("--joint-platforms", default="amd64,arm64,arm", help="platforms of the joint-compile rows")
    parser.add_argument("--joint-rehearse", action="store_true",
                        help="with --joint: write joint.md into the work directory, not --out")
    args = parser.parse_args()
    # A user's Python caches compiled modules; this machine's environment may say not to write them.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(SUITE / "tasks"), str(SUITE / "tasks.py")],
                   check=True, capture_output=True)
    if args.jobserver:
        out = Path(tempfile.mkdtemp(prefix="crossdock-bench-rehearsal-")) if args.jobserver_rehearse else args.out
        print("\n" + run_jobserver(args, out=out) + (f"\n\n(rehearsal: written to {out}, not benchmarks/)"
                                                    if args.jobserver_rehearse else ""))
        return
    if args.joint:
        out = Path(tempfile.mkdtemp(prefix="crossdock-bench-rehearsal-")) if args.joint_rehearse else args.out
        print("\n" + run_joint(args, out=out) + (f"\n\n(rehearsal: written to {out}, not benchmarks/)"
                                                 if args.joint_rehearse else ""))
        return
    if args.sizes:
        work = Path(tempfile.mkdtemp(prefix="crossdock-bench-"))
        print("\n" + write_sizes(args.out, versions(), measure_sizes(work)))
        return
    if args.fresh_runner:
        work = Path(tempfile.mkdtemp(prefix="crossdock-bench-"))
        (work / "logs").mkdir()
        info = versions()
        print(f"fresh runner, {info['date']}: logs under {work / 'logs'}", flush=True)
        rows = measure_fresh_runner(work, items=args.heavy_items, platforms=args.fresh_runner_platforms,
                                    log_dir=work / "logs", prune=(lambda: None) if args.rehearse else prune_build_cache)
        lines = line_count(work / "heavy-source")
        text = write_fresh_runner(work if args.rehearse else args.out, info, rows,
                                  platforms=args.fresh_runner_platforms, lines=lines)
        print("\n" + text + ("\n\n(rehearsal: nothing was pruned; not written to benchmarks/)" if args.rehearse
                             else ""))
        return
    if args.fixed_cost:
        work = Path(tempfile.mkdtemp(prefix="crossdock-bench-"))
        print("\n" + write_fixed_cost(args.out, versions(), measure_fixed_cost(work, repeat=max(args.repeat, 5))))
        return
    if args.quick:
        args.repeat, args.workloads, args.fully_cold = 1, "example", False
    work = Path(tempfile.mkdtemp(prefix="crossdock-bench-"))
    log_dir = work / "logs"
    log_dir.mkdir()
    info = versions()
    print(f"crossdock benchmarks, {info['date']}: {info['cores']} cores, {info['memory']}, engine {info['engine']}, "
          f"{info['buildx']}; logs under {log_dir}", flush=True)
    all_rows: dict[str, dict[str, Row]] = {}
    lines_of_rust = {}
    for workload in args.workloads.split(","):
        if workload == "example":
            source, bin_name, package, edit = SUITE / "example", "hello-crossdock", "", Path("src/main.rs")
        else:
            source = generate(work / "heavy-source", items=args.heavy_items)
            bin_name, package, edit = HEAVY_BIN, HEAVY_BIN, Path("crates/app/src/main.rs")
        lines_of_rust[workload] = line_count(source)

        def partial(rows: dict[str, Row], workload: str = workload) -> None:
            write_results(args.out, info, lines_of_rust, {**all_rows, workload: rows}, final=False)

        all_rows[workload] = measure(workload, source, bin_name, package, edit, work, repeat=args.repeat,
                                     emulated_repeat=args.emulated_repeat, log_dir=log_dir, done=partial,
                                     fully_cold=args.fully_cold and workload == "heavy")
    print("\n" + write_results(args.out, info, lines_of_rust, all_rows, final=True))
    if args.with_jobserver and not args.quick:
        text = run_jobserver(args, out=args.out, info=info)
        with (args.out / "results.md").open("a") as results:
            results.write("\n" + text + "\n")
        print("\n" + text)
    shutil.rmtree(work / "heavy-source", ignore_errors=True)


if __name__ == "__main__":
    main()
