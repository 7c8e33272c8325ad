"""docker/platform.sh's dating of sources by content, and its cook step, with plain `sh` and a stand-in cargo:
no Docker.

Before cargo runs, every file that differs from the target dir's record of its last build is dated now and
every other file newer than that build far in the past (OLD_MTIME), so cargo, which judges the project's own
crates by mtime, rebuilds exactly what changed whatever mtimes a checkout or a cached layer brought. The
stand-in cargo prints the mtime of each file in WATCH, can write a lock file (WRITE_LOCK) and fail (FAIL).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.conftest import platform_sh, stand_in_world

OLD_MTIME = 946684800
FAKE_CARGO = r"""#!/bin/sh
echo "fake-cargo $*" >&2
for f in ${WATCH:-}; do echo "mtime $f $(stat -c %Y "$f")" >&2; done
[ -z "${WRITE_LOCK:-}" ] || echo "# written by cargo" >Cargo.lock
[ -z "${FAIL:-}" ] || exit 101
mkdir -p "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
: >"$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/app"
"""


@pytest.fixture
def world(tmp_path):
    return stand_in_world(tmp_path, FAKE_CARGO, {
        "Cargo.toml": "[package]\n", "src/main.rs": "fn main() {}\n", "src/util.rs": "// util\n",
        "vendor/dep/.cargo-checksum.json": '{"package":"x"}', "vendor/dep/src/lib.rs": "// dep\n"})


def run(world: Path, command: str = "build", *, target: str = "target", check: bool = True, **extra: str) -> str:
    r = platform_sh(world, command, COMPILE_SLOTS="0", CARGO_TARGET_DIR=str(world / target),
                    WATCH="src/main.rs src/util.rs vendor/dep/src/lib.rs", **extra)
    if check:
        assert r.returncode == 0, r.stderr
    return r.stderr


def mtimes(log: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^mtime (\S+) (\d+)$", log, re.M)}


def checkout(world: Path, rel: str, text: str | None = None) -> None:
    """What a fresh checkout or a cached COPY layer does to a file: some mtime, maybe new content."""
    path = world / "src" / rel
    if text is not None:
        path.write_text(text)
    t = time.time() + 5  # newer than anything built so far
    os.utime(path, (t, t))


def test_changed_sources_are_new_and_unchanged_ones_old(world):
    first = mtimes(run(world))  # no record, no artifacts: nothing needs a date
    assert first["src/main.rs"] > OLD_MTIME
    record = (world / "target" / ".crossdock-sources.sha256").read_text()
    assert "./src/main.rs" in record and "./vendor/dep/.cargo-checksum.json" in record
    assert "./vendor/dep/src/lib.rs" not in record  # cargo judges vendored crates by checksum, not mtime

    checkout(world, "src/main.rs", "fn main() { println!(); }\n")
    checkout(world, "src/util.rs")  # same content, a checkout's new mtime
    checkout(world, "vendor/dep/src/lib.rs")
    before = time.time()
    second = mtimes(run(world))
    assert second["src/main.rs"] >= int(before)  # changed: now
    assert second["src/util.rs"] == OLD_MTIME  # unchanged: older than any artifact
    assert second["vendor/dep/src/lib.rs"] > OLD_MTIME  # vendored: never touched


def test_a_failed_build_leaves_its_changes_new_for_the_next(world):
    run(world)
    checkout(world, "src/main.rs", "fn main() { broken }\n")
    assert "fake-cargo" in run(world, check=False, FAIL="1")
    # Same content again, but the failed build may have left half-done artifacts: still dated now.
    assert "0" * 64 + "  ./src/main.rs" in (world / "target" / ".crossdock-sources.sha256").read_text()
    checkout(world, "src/main.rs")
    before = time.time()
    dated = mtimes(run(world))["src/main.rs"]
    assert dated >= int(before)
    assert "0" * 64 not in (world / "target" / ".crossdock-sources.sha256").read_text()
    assert mtimes(run(world))["src/main.rs"] == dated  # built since: older than that build, left alone


def test_cook_then_a_target_dir_that_never_built_starts_from_it(world):
    (world / "src" / "src" / "main.rs").write_text("fn main() {}\n")  # the recipe's stub
    log = run(world, "cook", target="cook", WRITE_LOCK="1")
    assert "platform.sh: cook: cargo build" in log
    assert "./Cargo.lock" in (world / "cook" / ".crossdock-sources.sha256").read_text()  # cargo wrote it
    assert "nothing to compile" in run(world, "cook", target="cook")  # the next layer, no source changed
    assert "fake-cargo" not in run(world, "cook", target="cook", COOK_WORKSPACE="0")
    assert "workspace layer off" in run(world, "cook", target="cook", COOK_WORKSPACE="0")

    checkout(world, "src/main.rs", "fn main() { real() }\n")  # the real sources over the stubs
    checkout(world, "src/util.rs")  # the same content, copied in later
    before = time.time()
    log = run(world, target="fresh", COOKED_DIR=str(world / "cook"))
    assert "starts from the dependency layers" in log
    assert mtimes(log)["src/main.rs"] >= int(before) and mtimes(log)["src/util.rs"] == OLD_MTIME
    assert (world / "out" / "app").exists()


def test_a_failing_cook_step_is_not_the_builds(world):
    log = run(world, "cook", target="cook", FAIL="1")
    assert "cook: cargo exited 101: this layer keeps what compiled" in log
