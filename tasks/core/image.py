"""The image spec: one frozen value saying what goes into the image, and everything derived from it.

``plan_image_spec`` makes it from the settings, the chosen cargo target and the project's
``[package.metadata.crossdock]`` keys (Docker's vocabulary: ``assets``, ``dirs``, ``volumes``, ``user``,
``uid``, ``gid``, ``workdir``, ``env``, ``entrypoint``, ``cmd``, ``bin-path``, ``bins``, ``labels``,
``annotations``, ``ports``, ``stop-signal``, ``healthcheck``, ``features``, ``no-default-features``,
``all-features``, ``build-env``), refusing what cannot work before anything is built. Everything else reads
the spec: ``render_image_stage`` (the Dockerfile's last stage), ``layout_text`` (what platform.sh's ``tree``
step places, owns and dates natively), ``build_args`` (what the compile and root-filesystem stages get),
``to_json`` (the build report, the release record, ``inv merge``'s comparison, ``inv rebuild``) and
``spec_label`` (what ``inv smoke`` checks, carried in the image itself).

Pure but for ``probe_assets``, which lists the asset sources on disk (as ``project.probe_project`` reads
manifests).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CrossdockError

DEFAULT_USER = "app"
DEFAULT_UID = 10001
DEFAULT_BIN_DIR = "/usr/local/bin"
APP_LINK = "/usr/local/bin/app"  # the default entrypoint: a link to the shipped binary
SPEC_LABEL = "dev.crossdock.spec"  # the checkable part of the spec, in the image's config
FLAVOURS = ("slim", "minimal", "static")
# Files crossdock itself puts in the runtime tree: an asset or directory may not replace them.
RUNTIME_FILES = ("/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl/certs/ca-certificates.crt",
                 "/var/lib/dpkg/status", "/etc/localtime", "/etc/timezone", "/tmp")
# Interpreters every slim (Debian) runtime has; minimal and static have no shell at all.
SLIM_INTERPRETERS = ("/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/dash")
SLIM_SYSTEM_DIRS = ("/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/")
SECRET_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL")
SPEC_KEYS = ("assets", "owned_by_user", "dirs", "volumes", "user", "uid", "gid", "allow_root", "workdir", "env",
             "entrypoint", "cmd", "bin_path", "bins", "labels", "annotations", "ports", "stop_signal",
             "healthcheck", "features", "no_default_features", "all_features", "build_env")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_FEATURE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_+./-]*$")
_SIGNAL = re.compile(r"^(SIG[A-Z0-9+-]+|[0-9]{1,2})$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+@%=,:/-]*$")  # no spaces or shell metacharacters: layout lines stay simple


class ImageSpecError(CrossdockError):
    """A key of the project's crossdock metadata that cannot work; the message names it and the fix."""


@dataclass(frozen=True)
class Binary:
    name: str  # the cargo binary
    path: str  # where it goes in the image (mode 0755, owned by root)


@dataclass(frozen=True)
class Asset:
    source: str  # relative to the project root (the build context), a file
    dest: str  # absolute path of the file in the image
    mode: int
    owned_by_user: bool = False


@dataclass(frozen=True)
class Directory:
    path: str
    mode: int = 0o755  # owned by the runtime user


@dataclass(frozen=True)
class ImageSpec:
    bin: str  # the main binary (cargo --bin)
    binaries: tuple[Binary, ...]
    user: str = DEFAULT_USER
    uid: int = DEFAULT_UID
    gid: int = DEFAULT_UID
    home: str = f"/home/{DEFAULT_USER}"
    workdir: str = f"/home/{DEFAULT_USER}"
    assets: tuple[Asset, ...] = ()
    dirs: tuple[Directory, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (link path, target)
    env: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] = (APP_LINK,)
    cmd: tuple[str, ...] = ()
    ports: tuple[int, ...] = (8080,)
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()  # the project's own; they win over crossdock's
    annotations: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    healthcheck: tuple[str, ...] = ()
    runtime: str = "slim"
    runtime_packages: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    no_default_features: bool = False
    all_features: bool = False
    build_env: tuple[tuple[str, str], ...] = ()

    @property
    def extra_bins(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.binaries if b.name != self.bin)

    @property
    def linkage(self) -> str:
        """What the compile steps need to know of the flavour: only ``static`` changes the compile."""
        return "static" if self.runtime == "static" else "dynamic"

    def cargo_feature_args(self) -> tuple[str, ...]:
        return ((("--all-features",) if self.all_features else ())
                + (("--no-default-features",) if self.no_default_features else ())
                + ((f"--features={','.join(self.features)}",) if self.features else ()))

    def to_json(self) -> dict[str, Any]:
        return {
            "bin": self.bin, "binaries": [[b.name, b.path] for b in self.binaries], "user": self.user,
            "uid": self.uid, "gid": self.gid, "home": self.home, "workdir": self.workdir,
            "assets": [[a.source, a.dest, f"{a.mode:04o}", a.owned_by_user] for a in self.assets],
            "dirs": [[d.path, f"{d.mode:04o}"] for d in self.dirs], "links": [list(x) for x in self.links],
            "env": dict(self.env), "entrypoint": list(self.entrypoint), "cmd": list(self.cmd),
            "ports": list(self.ports), "volumes": list(self.volumes), "labels": dict(self.labels),
            "annotations": dict(self.annotations), "stop_signal": self.stop_signal,
            "healthcheck": list(self.healthcheck), "runtime": self.runtime,
            "runtime_packages": list(self.runtime_packages), "features": list(self.features),
            "no_default_features": self.no_default_features, "all_features": self.all_features,
            "build_env": dict(self.build_env),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageSpec:
        return cls(
            bin=data["bin"], binaries=tuple(Binary(n, p) for n, p in data["binaries"]), user=data["user"],
            uid=int(data["uid"]), gid=int(data["gid"]), home=data["home"], workdir=data["workdir"],
            assets=tuple(Asset(s, d, int(m, 8), bool(o)) for s, d, m, o in data.get("assets", [])),
            dirs=tuple(Directory(p, int(m, 8)) for p, m in data.get("dirs", [])),
            links=tuple((a, b) for a, b in data.get("links", [])), env=tuple(data.get("env", {}).items()),
            entrypoint=tuple(data["entrypoint"]), cmd=tuple(data.get("cmd", [])),
            ports=tuple(int(p) for p in data.get("ports", [])), volumes=tuple(data.get("volumes", [])),
            labels=tuple(data.get("labels", {}).items()), annotations=tuple(data.get("annotations", {}).items()),
            stop_signal=data.get("stop_signal", ""), healthcheck=tuple(data.get("healthcheck", [])),
            runtime=data.get("runtime", "slim"), runtime_packages=tuple(data.get("runtime_packages", [])),
            features=tuple(data.get("features", [])), no_default_features=bool(data.get("no_default_features")),
            all_features=bool(data.get("all_features")), build_env=tuple(data.get("build_env", {}).items()),
        )

    def checks_json(self) -> dict[str, Any]:
        """What ``inv smoke`` checks in the files and config of a built image (the spec label's content)."""
        return {"user": self.user, "uid": self.uid, "gid": self.gid, "workdir": self.workdir,
                "binaries": [b.path for b in self.binaries],
                "assets": [[a.dest, f"{a.mode:04o}", "user" if a.owned_by_user else "root"] for a in self.assets],
                "dirs": [[d.path, f"{d.mode:04o}"] for d in self.dirs], "env": dict(self.env),
                "entrypoint": list(self.entrypoint), "cmd": list(self.cmd), "ports": list(self.ports),
                "volumes": list(self.volumes), "labels": dict(self.labels), "annotations": dict(self.annotations),
                "stop_signal": self.stop_signal, "healthcheck": list(self.healthcheck)}


# --- reading the metadata keys ---------------------------------------------------------------------------

def _where(key: str) -> str:
    return f"[package.metadata.crossdock] {key.replace('_', '-')}"


def _fail(key: str, message: str) -> ImageSpecError:
    return ImageSpecError(f"Cargo.toml {_where(key)}: {message}")


def _strings(key: str, value: Any, *, example: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(key, f"expected a list of strings, e.g. {example}; got {value!r}")
    return tuple(value)


def _table(key: str, value: Any, *, example: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
        raise _fail(key, f"expected a table of strings, e.g. {example}; got {value!r}")
    out = []
    for k, v in value.items():
        text = str(v).lower() if isinstance(v, bool) else str(v)
        if "\n" in text or "\n" in str(k):
            raise _fail(key, f"{k}: values are one line")
        out.append((str(k), text))
    return tuple(out)


def _mode(key: str, value: Any, *, default: int) -> int:
    if value is None:
        return default
    text = str(value)
    if not re.fullmatch(r"0?[0-7]{3,4}", text):
        raise _fail(key, f"mode {value!r} is not octal (e.g. \"755\" or \"0644\")")
    return int(text, 8)


def _absolute(key: str, path: str) -> str:
    if not path.startswith("/"):
        raise _fail(key, f"{path!r} is relative: image paths are absolute (e.g. /{path.lstrip('./')})")
    if not _SAFE_PATH.match(path):
        raise _fail(key, f"{path!r}: image paths use letters, digits and ._+@%=,:/- only (no spaces)")
    normal = posixpath.normpath(path)
    if path.startswith("//") or normal != path.rstrip("/") and path != "/" or ".." in path.split("/"):
        raise _fail(key, f"{path!r} is not a normal path (write {normal})")
    return normal


def _uint(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise _fail(key, f"expected a number from 0 to 2147483647, got {value!r}")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"expected true or false, got {value!r}")
    return value


def _secret_like(name: str) -> bool:
    """TOKEN, PASSWORD, SECRET, CREDENTIAL... as (the start of) a word or the end of the name, KEY or PASS as a
    word; a name that points at a secret (``..._FILE``, ``..._PATH``, ``..._DIR``) holds none."""
    upper = name.upper()
    if upper.endswith(("_FILE", "_PATH", "_DIR")):
        return False
    words = [w for w in re.split(r"[^A-Z0-9]+", upper) if w]
    return (any(w.startswith(("TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "APIKEY")) for w in words)
            or any(w in ("KEY", "KEYS", "PASS", "PWD") for w in words)
            or upper.endswith(("TOKEN", "PASSWORD", "SECRET", "KEY")))


# build-env names crossdock sets itself for the cross build: the project's value would undo it.
RESERVED_BUILD_ENV = ("PATH", "HOME", "CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS",
                      "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_MAKEFLAGS", "RUSTUP_TOOLCHAIN")


def _env(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    pairs = _table(key, value, example='{ RUST_LOG = "info" }')
    for name, _ in pairs:
        if key == "build_env" and (name in RESERVED_BUILD_ENV or name.startswith(("CARGO_TARGET_", "CC_", "AR_"))):
            raise _fail(key, f"{name} is set by crossdock for the cross build (the target's linker, flags and dirs): "
                             f"put rustflags in the project's Cargo.toml profile or .cargo/config.toml instead")
        if not _ENV_NAME.match(name):
            raise _fail(key, f"{name!r} is not an environment variable name (letters, digits, _)")
        if _secret_like(name):
            where = "the image's config and history" if key == "env" else "the build's provenance and logs"
            raise _fail(key, f"{name} looks like a secret: a value here is visible in {where}. Pass secrets at run "
                             f"time (docker run -e / a secret store), or to the compile as a build secret")
    return pairs


@dataclass(frozen=True)
class AssetSource:
    """One asset entry as probed on disk: the files it names (relative to the project root)."""

    pattern: str  # SOURCE as written
    dest: str
    mode: int
    files: tuple[tuple[str, str], ...]  # (source relative to the project root, path below dest or "")
    problem: str = ""  # why it cannot be used (missing, outside the project)


def _asset_entries(raw: Any) -> list[tuple[str, str, Any]]:
    if not isinstance(raw, list):
        raise _fail("assets", 'expected a list of ["SOURCE", "DEST", "MODE"], e.g. [["conf/app.toml", "/etc/app/", '
                              '"644"]]')
    entries = []
    for item in raw:
        if not (isinstance(item, list) and len(item) in (2, 3) and all(isinstance(x, str) for x in item)):
            raise _fail("assets", f'each entry is ["SOURCE", "DEST", "MODE"] (strings), not {item!r}')
        entries.append((item[0], item[1], item[2] if len(item) == 3 else None))
    return entries


def probe_assets(project: Path, package_dir: str, raw: Any) -> tuple[AssetSource, ...]:
    """Expand each ``assets`` entry on disk: SOURCE relative to the package directory, a file, a directory
    (copied recursively) or a glob; every file must stay inside the project (the build context)."""
    if raw is None:
        return ()
    root = project.resolve()
    base = (root / package_dir).resolve()
    found = []
    for pattern, dest, mode_text in _asset_entries(raw):
        mode = _mode("assets", mode_text, default=0o644)
        files: list[tuple[str, str]] = []
        problem = ""
        if pattern.startswith("/"):
            found.append(AssetSource(pattern=pattern, dest=dest, mode=mode, files=(),
                                     problem=f"{pattern!r} is absolute: SOURCE is relative to the package directory"))
            continue
        candidates = sorted(base.glob(pattern)) if any(ch in pattern for ch in "*?[") else [base / pattern]
        if not candidates or not all(c.exists() for c in candidates):
            dangling = [c for c in candidates if c.is_symlink() and not c.exists()]
            problem = (f"{dangling[0]} is a symlink to nothing" if dangling else
                       f"{pattern!r} does not exist in {base}")
        for c in candidates if not problem else ():
            real = c.resolve()
            if not real.is_relative_to(root):
                problem = f"{pattern!r} leads outside the project ({real}): assets come from the build context"
                break
            inner = [(f, f.relative_to(real).as_posix()) for f in sorted(real.rglob("*")) if f.is_file()] \
                if real.is_dir() else [(c, c.name if dest.endswith("/") else "")]
            for f, below in inner:  # a directory's contents go under DEST (a directory, with or without the /)
                if not f.resolve().is_relative_to(root):
                    problem = f"{f} leads outside the project: assets come from the build context"
                    break
                secret = secret_file(f.relative_to(base).as_posix() if f.is_relative_to(base) else f.name)
                if secret:
                    problem = (f"{f.relative_to(root)} is {secret}: crossdock never copies it into an image (list the "
                               f"files you want, or move it out of the asset's directory)")
                    break
                files.append((f.resolve().relative_to(root).as_posix(), below))
            if problem:
                break
        found.append(AssetSource(pattern=pattern, dest=dest, mode=mode, files=tuple(files), problem=problem))
    return tuple(found)


def secret_file(path: str) -> str:
    """What a file is when it must stay out of every image and build context ('' when it may go in): the
    rules of crossdock's own ignore file (.env files, VCS data)."""
    parts = path.split("/")
    name = parts[-1]
    if name == ".env" or name.startswith(".env."):
        return "an .env file"
    if any(part in (".git", ".hg", ".svn") for part in parts[:-1]) or name in (".git", ".gitconfig", ".netrc"):
        return "version control or credential data"
    return ""


@dataclass(frozen=True)
class SpecInputs:
    """What the planner reads besides the metadata: settings, the target, and what the disk said."""

    bin: str  # the binary the settings chose
    package_binaries: tuple[str, ...]  # what the package builds
    package_features: tuple[str, ...]  # the features it declares (optional dependencies included)
    runtime: str = "slim"
    runtime_packages: tuple[str, ...] = ()
    port: int = 8080
    bin_set_explicitly: bool = False
    assets: tuple[AssetSource, ...] = ()
    heads: Mapping[str, bytes] = field(default_factory=dict)  # first bytes of asset sources (shebang lines)


def _interpreter(head: bytes) -> str:
    """The program a script's #! line runs: its path, or for ``#!/usr/bin/env NAME`` the NAME."""
    if not head.startswith(b"#!"):
        return ""
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return ""
    if posixpath.basename(words[0]) == "env" and len(words) > 1:
        return words[2] if words[1] == "-S" and len(words) > 2 else words[1]
    return words[0]


Links = tuple[tuple[str, str], ...]


def _plan_binaries(m: Mapping[str, Any], inputs: SpecInputs) -> tuple[str, tuple[Binary, ...], Links]:
    """The main binary, every binary at its path, and the default entrypoint's link (``bins``, ``bin-path``)."""
    bins = _strings("bins", m["bins"], example='["server", "ctl"]') if "bins" in m else ()
    if bins and inputs.bin_set_explicitly and inputs.bin not in bins:
        raise _fail("bins", f"--bin {inputs.bin} is not in bins {list(bins)}: drop --bin or list it in bins")
    main = bins[0] if bins and not inputs.bin_set_explicitly else inputs.bin
    names = tuple(dict.fromkeys((main, *bins)))
    unknown = [b for b in names if b not in inputs.package_binaries]
    if unknown:
        raise _fail("bins", f"cargo builds no binary {', '.join(unknown)} in this package (it builds "
                            f"{', '.join(inputs.package_binaries) or 'none'})")
    if "bin_path" in m:
        if not isinstance(m["bin_path"], str):
            raise _fail("bin_path", f"expected a path, e.g. \"/{main}\"")
        main_path = _absolute("bin_path", m["bin_path"])
        bin_dir = posixpath.dirname(main_path)
    else:
        main_path, bin_dir = f"{DEFAULT_BIN_DIR}/{main}", DEFAULT_BIN_DIR
    binaries = tuple(Binary(n, main_path if n == main else posixpath.join(bin_dir, n)) for n in names)
    links = ((APP_LINK, main),) if "bin_path" not in m and main != "app" else ()
    return main, binaries, links


def _plan_user(m: Mapping[str, Any]) -> tuple[str, int, int, str, str]:
    """(user, uid, gid, home, workdir): ``user``, ``uid``, ``gid``, ``allow-root``, ``workdir``."""
    user = m.get("user", DEFAULT_USER)
    if not isinstance(user, str) or not _USER_NAME.match(user):
        raise _fail("user", f"{user!r} is not a user name (lowercase letters, digits, _ and -, at most 32)")
    uid = _uint("uid", m["uid"]) if "uid" in m else DEFAULT_UID
    gid = _uint("gid", m["gid"]) if "gid" in m else uid
    if (uid == 0 or user == "root") and not _flag("allow_root", m.get("allow_root", False)):
        raise _fail("uid", "the image would run as root: choose another uid (the default is 10001), or set "
                           "allow-root = true if the service really needs root")
    home = "/root" if uid == 0 else f"/home/{user}"
    if "workdir" in m and not isinstance(m["workdir"], str):
        raise _fail("workdir", "expected a path, e.g. \"/\"")
    workdir = _absolute("workdir", m["workdir"]) if "workdir" in m else home
    return user, uid, gid, home, workdir


def _plan_dirs(m: Mapping[str, Any]) -> tuple[tuple[Directory, ...], tuple[str, ...]]:
    """The user's directories (a volume is one too, before those inside it) and the volumes."""
    dirs: list[Directory] = []
    raw_dirs = m.get("dirs", [])
    if not isinstance(raw_dirs, list):
        raise _fail("dirs", 'expected a list, e.g. ["/data"] or [["/data", "750"]]')
    for item in raw_dirs:
        if isinstance(item, str):
            dirs.append(Directory(_absolute("dirs", item)))
        elif isinstance(item, list) and 1 <= len(item) <= 2 and all(isinstance(x, str) for x in item):
            dirs.append(Directory(_absolute("dirs", item[0]),
                                  _mode("dirs", item[1] if len(item) > 1 else None, default=0o755)))
        else:
            raise _fail("dirs", f'each entry is "/path" or ["/path", "MODE"], not {item!r}')
    volumes = tuple(_absolute("volumes", v) for v in _strings("volumes", m.get("volumes", []), example='["/data"]'))
    return tuple([Directory(v) for v in volumes if v not in {d.path for d in dirs}] + dirs), volumes


def _plan_assets(m: Mapping[str, Any], inputs: SpecInputs) -> tuple[Asset, ...]:
    """Each probed asset file at its DEST, owned by root unless ``owned-by-user`` lists it (or a directory of it)."""
    owned = tuple(_absolute("owned_by_user", p) for p in
                  _strings("owned_by_user", m.get("owned_by_user", []), example='["/etc/app/state.json"]'))
    assets: list[Asset] = []
    for source in inputs.assets:
        if source.problem:
            raise _fail("assets", f"{source.problem}; SOURCE is relative to the package directory")
        if not source.dest.startswith("/"):
            raise _fail("assets", f"DEST {source.dest!r} of {source.pattern!r} is relative: write an absolute path "
                                  f"(ending in / for a directory to copy into)")
        for rel, inner in source.files:
            target = _absolute("assets", posixpath.join(source.dest, inner) if inner else source.dest.rstrip("/"))
            assets.append(Asset(source=rel, dest=target, mode=source.mode,
                                owned_by_user=any(target == o or target.startswith(o + "/") for o in owned)))
    return tuple(assets)


# Directories of the runtime itself: no asset, directory, volume or binary may be one of them (an asset would
# replace it, a data directory would hand it to the service's user).
SYSTEM_DIRS = frozenset({"/", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/usr/bin", "/usr/sbin",
                         "/usr/lib", "/usr/lib64", "/usr/local", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib",
                         "/usr/share", "/etc", "/etc/ssl", "/etc/ssl/certs", "/var", "/var/lib", "/var/lib/dpkg",
                         "/tmp", "/home", "/root", "/dev", "/proc", "/sys", "/run", "/boot", "/opt", "/srv", "/mnt",
                         "/media"})
MERGED_USR = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")  # links to usr/... in the runtime


def _check_places(binaries: tuple[Binary, ...], links: Links, assets: tuple[Asset, ...],
                  dirs: tuple[Directory, ...], *, home: str, workdir: str) -> None:
    """Every declared path is a place of its own: no asset or directory lands on a binary, crossdock's link,
    a runtime file, another asset or a system directory; nothing is inside a file; nothing goes under the
    runtime's /bin, /lib, ... links (merged /usr: write /usr/bin/...)."""
    files: dict[str, tuple[str, str]] = {}  # path -> (key, what)
    for b in binaries:
        files[b.path] = ("bin_path" if b.path != f"{DEFAULT_BIN_DIR}/{b.name}" else "bins", f"binary {b.name}")
    for link, target in links:
        if link in files:
            raise _fail("bins", f"a binary named {posixpath.basename(link)} would replace crossdock's link {link} to "
                                f"{target}: set bin-path (or entrypoint) so that the link is not needed")
        files[link] = ("bins", "crossdock's link to the binary")
    files.update({f: ("assets", "a file crossdock writes into the runtime") for f in RUNTIME_FILES})
    for a in assets:
        if a.dest in files:
            raise _fail("assets", f"{a.source} -> {a.dest} lands on {files[a.dest][1]}: choose another DEST")
        files[a.dest] = ("assets", f"asset {a.source}")
    declared = [(path, key, what) for path, (key, what) in files.items() if path not in RUNTIME_FILES]
    declared += [(d.path, "dirs", f"directory {d.path}") for d in dirs]
    for path, key, what in declared:
        if path in SYSTEM_DIRS:
            raise _fail(key, f"{path} ({what}) is a directory of the runtime itself: choose a path of the service's "
                             f"own (e.g. {path.rstrip('/')}/<name> or /data)")
        if path.startswith(MERGED_USR):
            raise _fail(key, f"{path} ({what}) is under {path.split('/')[1]}, which is a link to /usr/"
                             f"{path.split('/')[1]} in the runtime: write /usr{path}")
        if path in files and key != "dirs" and path in (home, workdir):
            raise _fail(key, f"{path} ({what}) is the user's home or the working directory: choose another path")
        inside = next((f for f in files if path.startswith(f + "/")), None)
        if inside is not None:
            raise _fail(key, f"{path} ({what}) is inside {inside}, which is {files[inside][1]} (a file): choose "
                             f"another path")
    for d in dirs:
        if d.path in files:
            raise _fail("dirs", f"{d.path} is {files[d.path][1]}: choose another path")


def _system_program(path: str, runtime: str) -> bool:
    return runtime == "slim" and path.startswith(SLIM_SYSTEM_DIRS)


def _plan_entrypoint(m: Mapping[str, Any], inputs: SpecInputs, *, provided: set[str], default: str,
                     assets: tuple[Asset, ...]) -> tuple[str, ...]:
    """``entrypoint``: an absolute program some asset or binary provides (or, on slim, the base's); a script
    must be executable and its interpreter present in the flavour."""
    entrypoint = _strings("entrypoint", m["entrypoint"], example='["/start.sh"]') if "entrypoint" in m else (default,)
    if not entrypoint or not entrypoint[0].startswith("/"):
        raise _fail("entrypoint", f"{list(entrypoint)}: the first element is an absolute path (exec form: no shell)")
    program = entrypoint[0]
    if program not in provided and not _system_program(program, inputs.runtime):
        raise _fail("entrypoint", f"{program} is provided by no asset or binary"
                                  + (" (minimal and static images have only what crossdock puts there)"
                                     if inputs.runtime != "slim" else "")
                                  + f": add it to assets, or use one of {', '.join(sorted(provided))}")
    script = next((a for a in assets if a.dest == program), None)
    if script is None:
        return entrypoint
    if not script.mode & 0o111:
        raise _fail("assets", f"{script.source} is the entrypoint but its mode {script.mode:04o} is not "
                              f"executable: give it \"755\"")
    interpreter = _interpreter(inputs.heads.get(script.source, b""))
    candidates = {interpreter} if interpreter.startswith("/") else {f"/bin/{interpreter}", f"/usr/bin/{interpreter}"}
    if interpreter and not candidates & provided:
        if inputs.runtime != "slim":
            raise _fail("entrypoint", f"{script.source} starts with #!{interpreter}, but the {inputs.runtime} "
                                      f"flavour has no shell or interpreter: use runtime = \"slim\", or make the "
                                      f"entrypoint a binary")
        name = posixpath.basename(interpreter)
        if not candidates & set(SLIM_INTERPRETERS) and not any(p.startswith(name) for p in inputs.runtime_packages):
            raise _fail("entrypoint", f"{script.source} starts with #!{interpreter}, which a slim Debian runtime "
                                      f"lacks: add its package ({name}) to runtime-packages, or use #!/bin/sh")
    return entrypoint


def _plan_healthcheck(m: Mapping[str, Any], inputs: SpecInputs, provided: set[str]) -> tuple[str, ...]:
    healthcheck = _strings("healthcheck", m.get("healthcheck", []), example='["/app", "--health"]')
    if healthcheck and not healthcheck[0].startswith("/"):
        raise _fail("healthcheck", "exec form only (no shell in minimal and static images): the first element is "
                                   "an absolute path, e.g. [\"/usr/local/bin/app\", \"--health\"]")
    if healthcheck and healthcheck[0] not in provided and not _system_program(healthcheck[0], inputs.runtime):
        raise _fail("healthcheck", f"{healthcheck[0]} is provided by no asset or binary")
    return healthcheck


def _plan_ports(m: Mapping[str, Any], default: int) -> tuple[int, ...]:
    raw = m.get("ports")
    if raw is None:
        return (default,)
    if isinstance(raw, list) and all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in raw):
        return tuple(dict.fromkeys(raw))
    raise _fail("ports", f"expected TCP port numbers, e.g. [8000, 9090]; got {raw!r}")


def _plan_metadata(m: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], str]:
    """(labels, annotations, stop signal)."""
    stop_signal = m.get("stop_signal", "")
    if not isinstance(stop_signal, str) or (stop_signal and not _SIGNAL.match(stop_signal)):
        raise _fail("stop_signal", f"{stop_signal!r} is not a signal (e.g. SIGTERM, SIGINT or 15)")
    labels = _table("labels", m.get("labels", {}), example='{ "org.opencontainers.image.title" = "My service" }')
    annotations = _table("annotations", m.get("annotations", {}),
                         example='{ "org.opencontainers.image.description" = "..." }')
    for key, pairs in (("labels", labels), ("annotations", annotations)):
        bad = [k for k, _ in pairs if not _LABEL_KEY.match(k) or k == SPEC_LABEL]
        if bad:
            raise _fail(key, f"{', '.join(bad)}: keys are letters, digits and ._/- (and {SPEC_LABEL} is crossdock's)")
    return labels, annotations, stop_signal


def _plan_features(m: Mapping[str, Any], declared: tuple[str, ...]) -> tuple[str, ...]:
    features = _strings("features", m.get("features", []), example='["tls", "metrics"]')
    bad = [f for f in features if not _FEATURE.match(f)]
    undeclared = [f for f in features if "/" not in f and f not in declared]
    if bad or undeclared:
        raise _fail("features", f"the package declares no feature {', '.join(bad + undeclared)} (it has "
                                f"{', '.join(declared) or 'none'})")
    return features


def plan_image_spec(metadata: Mapping[str, Any], inputs: SpecInputs) -> ImageSpec:
    """The spec from the project's crossdock metadata (kebab-case keys) and what the settings chose; every
    refusal names the key, the problem and the fix."""
    m = {str(k).replace("-", "_"): v for k, v in metadata.items()}
    main, binaries, links = _plan_binaries(m, inputs)
    user, uid, gid, home, workdir = _plan_user(m)
    dirs, volumes = _plan_dirs(m)
    assets = _plan_assets(m, inputs)
    _check_places(binaries, links, assets, dirs, home=home, workdir=workdir)
    provided = {b.path for b in binaries} | {a.dest for a in assets} | {link for link, _ in links}
    entrypoint = _plan_entrypoint(m, inputs, provided=provided, assets=assets,
                                  default=links[0][0] if links else binaries[0].path)
    labels, annotations, stop_signal = _plan_metadata(m)
    return ImageSpec(
        bin=main, binaries=binaries, user=user, uid=uid, gid=gid, home=home, workdir=workdir, assets=assets,
        dirs=dirs, links=links, env=_env("env", m.get("env", {})), entrypoint=entrypoint,
        cmd=_strings("cmd", m.get("cmd", []), example='["--port", "8000"]'), ports=_plan_ports(m, inputs.port),
        volumes=volumes, labels=labels, annotations=annotations, stop_signal=stop_signal,
        healthcheck=_plan_healthcheck(m, inputs, provided), runtime=inputs.runtime,
        runtime_packages=inputs.runtime_packages, features=_plan_features(m, inputs.package_features),
        no_default_features=_flag("no_default_features", m.get("no_default_features", False)),
        all_features=_flag("all_features", m.get("all_features", False)),
        build_env=_env("build_env", m.get("build_env", {})))


# --- what the spec becomes ------------------------------------------------------------------------------

def _quote(value: str) -> str:
    """A Dockerfile LABEL/ENV value: double-quoted, with no variable expansion."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def crossdock_labels(title: str) -> tuple[tuple[str, str], ...]:
    """crossdock's own labels (build arguments fill them in); the project's labels come after and win."""
    return (("org.opencontainers.image.title", title),
            ("org.opencontainers.image.description", "${DESCRIPTION}"),
            ("org.opencontainers.image.version", "${VERSION}"),
            ("org.opencontainers.image.revision", "${VCS_REF}"),
            ("org.opencontainers.image.created", "${DATE}"),
            ("org.opencontainers.image.source", "${SOURCE_URL}"),
            ("org.opencontainers.image.url", "${SOURCE_URL}"),
            ("org.opencontainers.image.licenses", "${LICENSES}"),
            ("dev.crossdock.vcs-branch", "${VCS_BRANCH}"))


def spec_label(spec: ImageSpec) -> str:
    return json.dumps(spec.checks_json(), sort_keys=True, separators=(",", ":"))


def render_image_stage(spec: ImageSpec) -> str:
    """The Dockerfile's last stage (appended to docker/Dockerfile when the build files are staged): nothing
    but COPY of the natively prepared tree and the image's config, every value from the spec."""
    own = dict(crossdock_labels(spec.bin))
    lines = [
        "# --- generated by crossdock from the image spec (tasks/core/image.py): the runtime image ---",
        f"FROM runtime-{spec.runtime} AS image",
        *(f"ARG {name}" for name in ("VERSION=unknown", "VCS_REF=unknown", "VCS_BRANCH=unknown", "DATE=unknown",
                                     'SOURCE_URL=""', 'DESCRIPTION=""', 'LICENSES=""', "SOURCE_DATE_EPOCH=0")),
        "COPY --from=image-tree /tree/${SOURCE_DATE_EPOCH}/ /",
        "LABEL " + " \\\n      ".join(f'{k}="{v}"' for k, v in own.items() if k not in dict(spec.labels)),
    ]
    if spec.labels:
        lines.append("LABEL " + " \\\n      ".join(f"{k}={_quote(v)}" for k, v in spec.labels))
    lines.append(f"LABEL {SPEC_LABEL}={_quote(spec_label(spec))}")
    if spec.env:
        lines.append("ENV " + " \\\n    ".join(f"{k}={_quote(v)}" for k, v in spec.env))
    if spec.ports:
        lines.append("EXPOSE " + " ".join(str(p) for p in spec.ports))
    if spec.volumes:
        lines.append(f"VOLUME {json.dumps(list(spec.volumes))}")
    lines += [f"USER {spec.uid}:{spec.gid}", f"WORKDIR {spec.workdir}"]
    if spec.stop_signal:
        lines.append(f"STOPSIGNAL {spec.stop_signal}")
    if spec.healthcheck:
        lines.append(f"HEALTHCHECK CMD {json.dumps(list(spec.healthcheck))}")
    lines.append(f"ENTRYPOINT {json.dumps(list(spec.entrypoint))}")
    if spec.cmd:
        lines.append(f"CMD {json.dumps(list(spec.cmd))}")
    return "\n".join(lines) + "\n"


def layout_text(spec: ImageSpec) -> str:
    """What platform.sh's ``tree`` step places in the runtime tree, one instruction a line (paths have no
    spaces): ``user UID GID``, ``workdir PATH``, ``dir MODE PATH`` (owned by the user), ``bin NAME PATH``,
    ``link PATH TARGET``, ``file MODE OWNER PATH`` (staged under files/PATH; OWNER user or root)."""
    lines = [f"user {spec.uid} {spec.gid}", f"workdir {spec.workdir}"]
    lines += [f"dir {d.mode:04o} {d.path}" for d in spec.dirs]
    lines += [f"bin {b.name} {b.path}" for b in spec.binaries]
    lines += [f"link {path} {target}" for path, target in spec.links]
    lines += [f"file {a.mode:04o} {'user' if a.owned_by_user else 'root'} {a.dest}" for a in spec.assets]
    return "\n".join(lines) + "\n"


def build_env_text(spec: ImageSpec) -> str:
    """NAME=VALUE lines for the compile steps only (docker/Dockerfile's cook and build stages)."""
    return "".join(f"{k}={v}\n" for k, v in spec.build_env)


def build_args(spec: ImageSpec) -> dict[str, str]:
    """What the compile and root-filesystem stages get from the spec."""
    return {"BIN": spec.bin, "BINS": ",".join(spec.extra_bins), "CARGO_FEATURES": " ".join(spec.cargo_feature_args()),
            "LINKAGE": spec.linkage, "RUNTIME": spec.runtime, "RUNTIME_PACKAGES": ",".join(spec.runtime_packages),
            "APP_USER": spec.user, "APP_UID": str(spec.uid), "APP_GID": str(spec.gid), "APP_HOME": spec.home}


def annotation_args(spec: ImageSpec) -> tuple[str, ...]:
    """``--annotation`` for buildx build: on the image manifest (and the per-platform index, when there is one)."""
    return tuple(a for k, v in spec.annotations for a in ("--annotation", f"manifest:{k}={v}"))


def parse_checks(label: str) -> dict[str, Any] | None:
    """The spec label of a built image, or None (an image from before it, or not crossdock's)."""
    try:
        data = json.loads(label)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
