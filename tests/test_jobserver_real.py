"""The real tier of the jobserver (``--compile-tokens``): parallel arches on one build daemon share one pool of
tokens, read from the builds' own logs, and a build killed while it holds tokens does not stall the next.

The project is a small workspace (four library crates and a binary) whose ``.cargo/config.toml`` runs every
rustc job through a wrapper that prints the job's start and end (wall clock: every build on the daemon
shares the kernel's clock) and a unique id on stderr; cargo passes those lines into the BuildKit log (and
replays them for fresh units: the id tells a replay from a new job). Merging both arches' logs gives how
many rustc jobs ran at every moment.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import INV, LOCAL_WORLD, SUITE, commit_all, run_inv, unique_image

pytestmark = pytest.mark.real

WRAPPER = """#!/bin/sh
# RUSTC_WRAPPER: every rustc job cargo runs prints its start and end (wall clock) and an id on stderr, which
# cargo passes through to the build log. cargo's probes of rustc itself are no jobs.
rustc=$1
shift
case " $* " in *" ___ "*|*" -vV "*) exec "$rustc" "$@" ;; esac
id=$(cat /proc/sys/kernel/random/uuid)
echo "rustc-job start $(date +%s.%N) $id" >&2
sleep {hold}
status=0
"$rustc" "$@" || status=$?
echo "rustc-job end $(date +%s.%N) $id" >&2
exit "$status"
"""
JOB = re.compile(r"rustc-job (start|end) (\d+\.\d+) (\S+)")


def jobs_project(dest: Path, *, libs: int = 4, hold: float = 1.0, mark: str = "") -> Path:
    """A workspace of ``libs`` independent library crates and a binary using them; each rustc job holds its
    token ``hold`` seconds longer (so that jobs that may overlap do)."""
    (dest / "crates" / "app" / "src").mkdir(parents=True)
    (dest / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["crates/*"]\n')
    for i in range(libs):
        (dest / "crates" / f"part{i}" / "src").mkdir(parents=True)
        (dest / "crates" / f"part{i}" / "Cargo.toml").write_text(
            f'[package]\nname = "part{i}"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n')
        (dest / "crates" / f"part{i}" / "src" / "lib.rs").write_text(
            f"// {mark}\npub fn value() -> u64 {{\n    {i + 1}\n}}\n")
    deps = "".join(f'part{i} = {{ path = "../part{i}" }}\n' for i in range(libs))
    (dest / "crates" / "app" / "Cargo.toml").write_text(
        '[package]\nname = "jobs-probe"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
        f"[dependencies]\n{deps}")
    total = " + ".join(f"part{i}::value()" for i in range(libs))
    (dest / "crates" / "app" / "src" / "main.rs").write_text(
        f'fn main() {{\n    println!("jobs-probe 0.1.0 {{}}", {total});\n}}\n')
    (dest / ".cargo").mkdir()
    (dest / ".cargo" / "config.toml").write_text(
        '[build]\nrustc-wrapper = "tools/rustc-log"\n\n'
        "# Declared only so that crossdock stages tools/ into the dependency layers' trees too (no crate comes\n"
        "# from it): the wrapper runs in every compile step.\n"
        '[source.test-tools]\ndirectory = "tools"\n')
    (dest / "tools").mkdir()
    wrapper = dest / "tools" / "rustc-log"
    wrapper.write_text(WRAPPER.format(hold=hold))
    wrapper.chmod(0o755)
    (dest / ".gitignore").write_text("target/\n")
    commit_all(dest, "jobs")
    return dest


def rustc_jobs(*logs: str) -> dict[str, tuple[float, float]]:
    """Every rustc job in the logs, by id: (start, end). A replayed job (same id) counts once."""
    seen: dict[str, dict[str, float]] = {}
    for log in logs:
        for m in JOB.finditer(log):
            seen.setdefault(m.group(3), {}).setdefault(m.group(1), float(m.group(2)))
    return {job: (t["start"], t["end"]) for job, t in seen.items() if "start" in t and "end" in t}


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end and a start at the same instant do not overlap)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_most_at_once_counts_overlaps():
    assert most_at_once([(0, 2), (1, 3), (2, 4)]) == 2
    assert most_at_once([(0, 1), (1, 2)]) == 1
    assert most_at_once([(0, 10), (1, 2), (1.5, 3), (2.5, 4)]) == 3
    log = "#9 1.0 rustc-job start 5.5 a\n#9 2.0 rustc-job end 7.0 a\n#12 0.1 rustc-job start 5.5 a\n"
    assert rustc_jobs(log) == {"a": (5.5, 7.0)}


def test_parallel_arches_never_run_more_rustc_jobs_than_tokens(engine, tmp_path):
    """Each platform with its own cargo (--joint-compile=off; as when their features differ, or for two
    projects on one daemon): the cargos share the daemon's tokens."""
    tokens = 2
    project = jobs_project(tmp_path / "jobs", mark=tmp_path.name)
    out = tmp_path / "out"
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                f"--compile-tokens={tokens}", "--joint-compile=off", f"--image={unique_image('jobs')}",
                f"--out-dir={out}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    logs = {arch: (out / "build" / f"{arch}.log").read_text() for arch in ("amd64", "arm64")}
    by_arch = {arch: rustc_jobs(log) for arch, log in logs.items()}
    jobs = {**by_arch["amd64"], **by_arch["arm64"]}
    # every crate of both arches compiled here (4 libraries and the binary, each compiled twice: the cooked
    # layers' stubs and the real sources), under the jobserver of this daemon
    assert all(len(j) >= 5 for j in by_arch.values()), {a: len(j) for a, j in by_arch.items()}
    assert most_at_once(list(jobs.values())) == tokens, sorted(jobs.values())
    # and the two builds did share the daemon's tokens: some job of one arch ran while one of the other did
    assert any(s1 < e2 and s2 < e1 for s1, e1 in by_arch["amd64"].values() for s2, e2 in by_arch["arm64"].values())
    for log in logs.values():
        assert f"for a compile token ({tokens} in all)" in log and "compile slot" not in log


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        assert proc.poll() is None, f"the build ended before its log said {text!r}: {path.read_text()[-3000:]}"
        time.sleep(1)
    raise AssertionError(f"{path} did not say {text!r} within {timeout:.0f} s")


def test_a_build_killed_holding_tokens_does_not_stall_the_next(engine, tmp_path):
    """One token. Build A holds it in a slow rustc job, build B waits for it; A's `docker buildx build` (and
    the `inv` running it) is killed. B must get the token back and finish."""
    env = {**os.environ}
    stuck = jobs_project(tmp_path / "stuck", libs=1, hold=600, mark=tmp_path.name)
    after = jobs_project(tmp_path / "after", libs=1, mark=tmp_path.name)

    def start(project: Path, name: str) -> subprocess.Popen:
        argv = [*INV, "-f", str(LOCAL_WORLD), "build", "--platforms=amd64", f"--project={project}",
                "--compile-tokens=1", f"--image={unique_image(name)}", f"--out-dir={tmp_path / name}"]
        return subprocess.Popen(argv, cwd=SUITE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    a = start(stuck, "stuck")
    try:
        _wait_for(tmp_path / "stuck" / "build" / "amd64.log", "rustc-job start", a, 900)
        b = start(after, "after")
        try:
            _wait_for(tmp_path / "after" / "build" / "amd64.log", "waiting for a compile token", b, 900)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(b.pid, signal.SIGKILL)
            raise
    finally:
        with contextlib.suppress(ProcessLookupError):  # inv and its `docker buildx build`: BuildKit cancels
            os.killpg(a.pid, signal.SIGKILL)             # the build, and the RUN's processes die
        a.wait()
    out, _ = b.communicate(timeout=600)
    log = (tmp_path / "after" / "build" / "amd64.log").read_text()
    assert b.returncode == 0, out[-3000:]
    assert "gave back the compile token of a build that died holding it" in log or \
        "the jobserver starts again" in log, log[-3000:]
    waited = float(re.search(r"waited ([0-9.]+)s for a compile token \(1 in all\)", log).group(1))
    assert waited < 300, log[-3000:]
