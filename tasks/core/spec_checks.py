"""Smoke checks of what the image spec promises (container-structure-test style), as pure functions.

The spec comes from the image itself (its ``dev.crossdock.spec`` label, written from the spec the build
planned); the facts from ``docker image inspect`` (the config), the platform manifest (annotations) and one
run of a probe inside a container of the image, as its user: ``stat`` of every declared path and a real write
into every declared directory (``probe_script``, parsed by ``parse_probe``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .checks import Check

PROBE_PATH = "/.crossdock-probe/busybox"  # where the static probe binary is copied into the container
WRITE_TEST = ".crossdock-write-test"

# The probe: for each path up to "--", one line `stat PATH MODE UID GID KIND` (or `missing PATH`); for each
# directory after it, `writable DIR` or `unwritable DIR` after really creating and removing a file there.
PROBE_SCRIPT = (
    'b=' + PROBE_PATH + '; while [ "$#" -gt 0 ] && [ "$1" != -- ]; do '
    'if [ -e "$1" ] || [ -L "$1" ]; then echo "stat $1 $($b stat -c "%a %u %g %F" "$1")"; '
    'else echo "missing $1"; fi; shift; done; '
    '[ "$#" -gt 0 ] && shift; for d in "$@"; do '
    'if ( : >"$d/' + WRITE_TEST + '" ) 2>/dev/null; then $b rm -f "$d/' + WRITE_TEST + '"; echo "writable $d"; '
    'else echo "unwritable $d"; fi; done'
)


@dataclass(frozen=True)
class PathFacts:
    mode: int
    uid: int
    gid: int
    kind: str  # stat's %F: regular file, directory, symbolic link, ...


def probe_args(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The probe's arguments: every path the spec declares, then ``--`` and the directories to write into."""
    paths = [*spec.get("binaries", []), *(a[0] for a in spec.get("assets", [])), *(d[0] for d in spec.get("dirs", []))]
    program = (spec.get("entrypoint") or [""])[0]
    if program and program not in paths:
        paths.append(program)
    return (*dict.fromkeys(paths), "--", *(d[0] for d in spec.get("dirs", [])))


def parse_probe(output: str) -> tuple[dict[str, PathFacts | None], dict[str, bool]]:
    """(path -> its facts, None when missing; directory -> whether the user could write there)."""
    stats: dict[str, PathFacts | None] = {}
    writable: dict[str, bool] = {}
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word == "missing":
            stats[rest] = None
        elif word == "stat":
            parts = rest.split(" ", 4)
            if len(parts) == 5 and parts[1].isdigit():
                stats[parts[0]] = PathFacts(int(parts[1], 8), int(parts[2]), int(parts[3]), parts[4].strip())
        elif word in ("writable", "unwritable"):
            writable[rest] = word == "writable"
    return stats, writable


def _owner_and_mode(found: PathFacts, *, kind: str, mode: str, owner: tuple[int, int], whose: str) -> list[str]:
    problems = []
    if not found.kind.startswith(kind):  # stat says "regular empty file" for an empty one
        problems.append(f"is a {found.kind}")
    if found.mode != int(mode, 8):
        problems.append(f"mode {found.mode:04o}, the spec says {mode}")
    if (found.uid, found.gid) != owner:
        problems.append(f"owned by {found.uid}:{found.gid}, " + whose)
    return problems


def check_files(spec: Mapping[str, Any], stats: Mapping[str, PathFacts | None],
                writable: Mapping[str, bool]) -> list[Check]:
    """Every binary, asset and directory at its path with its mode and owner; every directory writable."""
    user = (int(spec.get("uid", 0)), int(spec.get("gid", 0)))
    checks: list[Check] = []

    def facts(path: str, what: str) -> PathFacts | None:
        found = stats.get(path)
        if found is None:
            checks.append(Check(what, False, f"{path}: " + ("the probe said nothing about it" if path not in stats
                                                           else "not in the image")))
        return found

    for path in spec.get("binaries", []):
        if (found := facts(path, f"binary {path}")) is not None:
            ok = found.kind.startswith("regular") and found.mode & 0o111 != 0
            checks.append(Check(f"binary {path}", ok, f"{path}: {found.kind}, mode {found.mode:04o}"))
    for path, mode, owner in spec.get("assets", []):
        if (found := facts(path, f"asset {path}")) is not None:
            want = user if owner == "user" else (0, 0)
            problems = _owner_and_mode(found, kind="regular", mode=mode, owner=want,
                                       whose=f"the spec says {want[0]}:{want[1]} ({owner})")
            checks.append(Check(f"asset {path}", not problems,
                                f"{path}: " + ("; ".join(problems) or f"mode {mode}, owner {owner}")))
    for path, mode in spec.get("dirs", []):
        if (found := facts(path, f"directory {path}")) is not None:
            problems = _owner_and_mode(found, kind="directory", mode=mode, owner=user,
                                       whose=f"not the runtime user {user[0]}:{user[1]}")
            if not writable.get(path, False):
                problems.append(f"user {user[0]}:{user[1]} cannot write into it")
            checks.append(Check(f"directory {path}", not problems, f"{path}: " + ("; ".join(problems) or (
                f"mode {mode}, owned by {user[0]}:{user[1]}, writable (a file was written)"))))
    program = (spec.get("entrypoint") or [""])[0]
    if program:
        found = stats.get(program)
        ok = found is not None and (found.kind.startswith("regular") or found.kind == "symbolic link")
        checks.append(Check("entrypoint file", ok, f"{program}: " + (found.kind if found else "not in the image")))
    return checks


def _ports(config: Mapping[str, Any]) -> list[int]:
    return sorted(int(p.split("/")[0]) for p in (config.get("ExposedPorts") or {}))


def check_config(spec: Mapping[str, Any], config: Mapping[str, Any],
                 annotations: Mapping[str, str] | None = None) -> list[Check]:
    """The image config (``docker image inspect``'s ``Config``) says what the spec says: entrypoint, cmd,
    env, user, workdir, labels, exposed ports, volumes, stop signal, health check; the manifest carries its
    annotations."""
    checks = []

    def same(name: str, found: Any, want: Any) -> None:
        checks.append(Check(name, found == want, f"{found!r}" + ("" if found == want else f", the spec says {want!r}")))

    same("config entrypoint", list(config.get("Entrypoint") or []), list(spec.get("entrypoint", [])))
    same("config cmd", list(config.get("Cmd") or []), list(spec.get("cmd", [])))
    same("config user", config.get("User") or "", f"{spec.get('uid')}:{spec.get('gid')}")
    same("config workdir", config.get("WorkingDir") or "/", spec.get("workdir", "/"))
    env = dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e)
    for name, value in (spec.get("env") or {}).items():
        same(f"env {name}", env.get(name), value)
    labels = config.get("Labels") or {}
    for name, value in (spec.get("labels") or {}).items():
        same(f"label {name}", labels.get(name), value)
    same("exposed ports", _ports(config), sorted(spec.get("ports", [])))
    same("volumes", sorted(config.get("Volumes") or {}), sorted(spec.get("volumes", [])))
    if spec.get("stop_signal"):
        same("stop signal", config.get("StopSignal") or "", spec["stop_signal"])
    if spec.get("healthcheck"):
        same("healthcheck", list((config.get("Healthcheck") or {}).get("Test") or []),
             ["CMD", *spec["healthcheck"]])
    for name, value in (spec.get("annotations") or {}).items():
        same(f"annotation {name}", (annotations or {}).get(name), value)
    return checks


PROBE_DIR = PROBE_PATH.rsplit("/", 1)[0]


def probe_create_argv(*, ref: str, platform: str, args: Sequence[str], name: str) -> tuple[str, ...]:
    """``docker create`` of a container of the image that runs the probe as the image's user, with no network;
    the static probe binary (the build machine's busybox, run natively by the kernel whatever the image's
    platform) is copied into it before it starts (``docker cp``: works with a remote engine too)."""
    return ("docker", "create", "--name", name, "--platform", platform, "--network", "none",
            "--entrypoint", PROBE_PATH, ref, "sh", "-c", PROBE_SCRIPT, "sh", *args)
