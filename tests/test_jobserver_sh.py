"""docker/platform.sh's jobserver (COMPILE_TOKENS), run with plain `sh` and a stand-in cargo: no Docker.

The stand-in cargo logs its start and end, takes EXTRA more tokens from the jobserver's pipe (as cargo does
for its second, third... job), holds them HOLD seconds and gives them back, then writes the binary where
`platform.sh build` looks for it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import platform_sh, stand_in_world

FAKE_CARGO = r"""#!/bin/sh
fifo=${CARGO_MAKEFLAGS#*fifo:}
echo "fake-cargo start $(date +%s.%N) makeflags=${CARGO_MAKEFLAGS:-none}" >&2
got=""
if [ -n "${EXTRA:-}" ]; then got=$(dd if="$fifo" iflag=nonblock bs=1 count="$EXTRA" 2>/dev/null); fi
echo "fake-cargo extra=${#got}" >&2
sleep "${HOLD:-0.5}"
[ -z "$got" ] || printf %s "$got" >"$fifo"
echo "fake-cargo end $(date +%s.%N)" >&2
mkdir -p "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
: >"$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/app"
"""


@pytest.fixture
def world(tmp_path):
    return stand_in_world(tmp_path, FAKE_CARGO, {"main.rs": "fn main() {}\n"})


def start(world: Path, name: str, *, tokens: str = "2", hold: float = 0.5, extra: int = 0) -> subprocess.Popen:
    (world / f"home-{name}").mkdir(exist_ok=True)
    return platform_sh(world, "build", popen=True, HOME=str(world / f"home-{name}"),
                       CARGO_TARGET_DIR=str(world / f"target-{name}"), OUT_DIR=str(world / f"out-{name}"),
                       COMPILE_TOKENS=tokens, HOLD=str(hold), EXTRA=str(extra) if extra else "", JOBSERVER_POLL="0.1")


def finish(proc: subprocess.Popen, timeout: float = 30) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return err


def intervals(log: str) -> tuple[float, float]:
    return (float(re.search(r"fake-cargo start (\S+)", log).group(1)),
            float(re.search(r"fake-cargo end (\S+)", log).group(1)))


def test_three_builds_share_two_tokens(world):
    logs = [finish(p) for p in [start(world, n) for n in "abc"]]
    spans = [intervals(log) for log in logs]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most == 2, spans
    assert all(re.search(r"waited [0-9.]+s for a compile token \(2 in all\)", log) for log in logs)
    assert sum("waiting for a compile token" in log for log in logs) >= 1
    assert all("makeflags=-j --jobserver-auth=fifo:" in log for log in logs)


def test_cargo_takes_the_other_tokens_from_the_pipe(world):
    """Three tokens: the build takes one itself, its cargo finds exactly the two others in the pipe."""
    assert "fake-cargo extra=2" in finish(start(world, "a", tokens="3", extra=5))


def test_a_build_killed_holding_tokens_gives_them_back(world):
    """Two tokens, both held by build A (its own and one its cargo took); B waits. A is killed with SIGKILL
    (shell, cargo and all): B gets A's own token back at once and, since no live build holds a token, the
    pipe starts again with exactly two."""
    a = start(world, "a", hold=60, extra=1)
    deadline = time.monotonic() + 10
    while not list((world / "cache" / ".crossdock-jobserver" / "builds").glob("*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # A's cargo has taken its extra token
    b = start(world, "b", extra=5)
    time.sleep(1)
    assert b.poll() is None  # waiting: no token left
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    log = finish(b)
    assert "gave back the compile token of a build that died holding it" in log
    assert "the jobserver starts again with 2" in log
    assert "fake-cargo extra=1" in log  # exactly two tokens in all: B's own and one more


def test_the_pipe_is_filled_afresh_when_nobody_is_in(world):
    """A build killed before it gave anything back leaves no trace for the next one to trip on."""
    a = start(world, "a", tokens="1", hold=60)
    time.sleep(1.5)
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    log = finish(start(world, "b", tokens="1"))
    assert re.search(r"waited 0\.\ds for a compile token \(1 in all\)", log)


def test_no_tokens_means_no_jobserver(world):
    log = finish(start(world, "a", tokens="0"))
    assert "makeflags=none" in log and "compile token" not in log
    assert not (world / "cache" / ".crossdock-jobserver").exists()


def test_auto_is_the_machines_cores(world):
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    assert f"for a compile token ({cores} in all)" in finish(start(world, "a", tokens="auto"))


def test_bad_token_count_is_an_error(world):
    p = start(world, "a", tokens="many")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "COMPILE_TOKENS must be auto or a whole number, not 'many'" in err
