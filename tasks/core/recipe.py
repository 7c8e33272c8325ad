"""The dependency recipe: what the compile's cached layers are built from, cargo-chef style.

BuildKit's cache mounts (where cargo's target dirs live on a long-lived machine) are never exported
with ``--cache-to``, so a fresh runner would compile every dependency again. docker/Dockerfile therefore
compiles in two layers of their own before the project's own build, each from a tree crossdock stages
under ``target/crossdock/recipe/``:

* ``deps``: every local package's ``Cargo.toml``, the workspace's ``Cargo.toml``, ``Cargo.lock``,
  ``.cargo/config.toml``, the vendored crates (``[source.*] directory = ...``) and a stub source for every
  target cargo would read (an empty ``lib.rs``, ``fn main() {}`` for binaries and build scripts), as
  cargo-chef's ``prepare`` writes its skeleton. The layer compiles the crates the binary depends on from
  crates.io (or the vendor directory): it changes only when a manifest, the lock file or a vendored
  crate does.
* ``workspace``: the real sources of the project's other local packages (a workspace's library crates
  and path dependencies), the shipped binary's package still stubbed: a change in the binary's own crate
  (the usual edit) leaves this layer cached too, and a fresh runner recompiles only that crate.

Unlike cargo-chef, manifests are copied as they are (no version masking: a version bump of a local
crate re-runs the layers) and test, bench and example targets that cargo discovers by itself are left
out (``cargo build --bin`` never builds them; explicitly declared ones are stubbed, since cargo refuses a
manifest whose declared target file is missing). cargo-chef removes the stubs' artifacts after cooking;
here docker/platform.sh keeps a record of the sources each target dir was built from and dates every
file whose content differs from that record *now* and every other file far in the past, so cargo
rebuilds exactly the crates whose sources are not the ones their artifacts came from.

``plan_recipe`` is pure (file lists and parsed manifests in, the two trees out); ``probe_recipe`` reads
the project and ``write_recipe`` stages the trees.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

RECIPE_DIR = "target/crossdock/recipe"  # inside the project, next to the staged Dockerfile
LAYERS = ("deps", "workspace")
# What never reaches the builder (docker/Dockerfile's ignore rules): the recipe leaves it out too.
SKIPPED_DIRS = frozenset({"target", ".git"})


def _skipped_file(name: str) -> bool:
    return name == ".env" or name.startswith(".env.")


@dataclass(frozen=True)
class StubTarget:
    kind: str  # lib | bin | build | example | test | bench
    path: str  # relative to the project root
    harness: bool = True  # tests and benches: libtest's harness (no main of their own)

    @property
    def source(self) -> str:
        """The stub's text: empty for libraries and harnessed tests, an empty main for the rest."""
        if self.kind == "lib" or (self.kind in ("test", "bench") and self.harness):
            return ""
        return "fn main() {}\n"


@dataclass(frozen=True)
class Recipe:
    # path relative to the project -> the stub text, or None: the project's own file, as it is
    deps: Mapping[str, str | None]
    workspace: tuple[str, ...]  # the project's own files, as they are, laid over the deps tree

    def layer(self, name: str) -> Mapping[str, str | None]:
        if name == "deps":
            return self.deps
        return {path: None for path in self.workspace}


def _join(directory: str, path: str) -> str:
    joined = os.path.normpath(str(PurePosixPath(directory) / path))
    return "" if joined == "." else joined


def _under(path: str, directory: str) -> bool:
    return directory in ("", ".") or path == directory or path.startswith(directory.rstrip("/") + "/")


def _discovered(files: set[str], folder: str) -> list[tuple[str, str]]:
    """(name, path) of targets cargo finds by itself in ``folder``: ``folder/x.rs`` and ``folder/x/main.rs``."""
    found = []
    for f in sorted(files):
        parts = f.split("/")
        if f.startswith(folder + "/") and len(parts) == folder.count("/") + 2 and f.endswith(".rs"):
            found.append((parts[-1][:-3], f))
        elif f.startswith(folder + "/") and len(parts) == folder.count("/") + 3 and parts[-1] == "main.rs":
            found.append((parts[-2], f))
    return found


def _inferred_path(kind: str, name: str, package: str, files: set[str]) -> str:
    """Where cargo looks for a declared target without a ``path`` (the first candidate that exists)."""
    folder = {"bin": "src/bin", "example": "examples", "test": "tests", "bench": "benches"}[kind]
    candidates = [f"{folder}/{name}.rs", f"{folder}/{name}/main.rs"]
    if kind == "bin" and name == package:
        candidates.append("src/main.rs")
    return next((c for c in candidates if c in files), candidates[0])


def package_targets(manifest: Mapping[str, Any], files: Iterable[str]) -> tuple[StubTarget, ...]:
    """Every target of a package that cargo reads when it builds the package's binaries or its library:
    the library, the binaries, the build script, and explicitly declared examples, tests and benches.
    ``files`` and the returned paths are relative to the package directory."""
    file_set = set(files)
    package = manifest.get("package", {})
    name = str(package.get("name", ""))
    targets: dict[str, StubTarget] = {}

    def add(kind: str, path: str, *, harness: bool = True) -> None:
        targets.setdefault(os.path.normpath(path), StubTarget(kind, os.path.normpath(path), harness))

    lib = manifest.get("lib")
    if isinstance(lib, dict) and lib.get("path"):
        add("lib", lib["path"])
    elif "src/lib.rs" in file_set and package.get("autolib", True):
        add("lib", "src/lib.rs")
    build = package.get("build")
    if isinstance(build, str):
        add("build", build)
    elif build is not False and "build.rs" in file_set:
        add("build", "build.rs")
    folders = {"bin": "src/bin", "example": "examples", "test": "tests", "bench": "benches"}
    for kind in ("bin", "example", "test", "bench"):
        for entry in manifest.get(kind, []) or []:
            if not isinstance(entry, dict):
                continue
            path = entry.get("path") or _inferred_path(kind, str(entry.get("name", "")), name, file_set)
            add(kind, path, harness=bool(entry.get("harness", True)))
    if package.get("autobins", True):
        if "src/main.rs" in file_set:
            add("bin", "src/main.rs")
        for _, path in _discovered(file_set, folders["bin"]):
            add("bin", path)
    return tuple(sorted(targets.values(), key=lambda t: t.path))


def path_dependencies(manifest: Mapping[str, Any]) -> list[str]:
    """The ``path`` of every dependency a manifest names (normal, dev, build, per-target, workspace,
    ``[patch.*]`` and ``[replace]``), relative to the manifest's directory."""
    tables: list[Mapping[str, Any]] = []
    for key in ("dependencies", "dev-dependencies", "dev_dependencies", "build-dependencies",
                "build_dependencies"):
        tables.append(manifest.get(key, {}) or {})
        tables.append((manifest.get("workspace", {}) or {}).get(key, {}) or {})
    for spec in (manifest.get("target", {}) or {}).values():
        if isinstance(spec, dict):
            tables += [spec.get(k, {}) or {} for k in ("dependencies", "dev-dependencies", "build-dependencies")]
    tables += list((manifest.get("patch", {}) or {}).values())
    tables.append(manifest.get("replace", {}) or {})
    found = []
    for table in tables:
        if not isinstance(table, dict):
            continue
        for dep in table.values():
            if isinstance(dep, dict) and isinstance(dep.get("path"), str):
                found.append(dep["path"])
    return found


def source_directories(config: Mapping[str, Any]) -> list[str]:
    """The directories of ``[source.*] directory = ...`` (vendored crates) in a ``.cargo/config.toml``,
    relative to the project root (the directory holding ``.cargo``)."""
    return [spec["directory"] for spec in (config.get("source", {}) or {}).values()
            if isinstance(spec, dict) and isinstance(spec.get("directory"), str)]


ROOT_FILES = (".cargo/config.toml", ".cargo/config", "rust-toolchain", "rust-toolchain.toml")


def plan_recipe(files: Iterable[str], manifests: Mapping[str, Mapping[str, Any]], *, built: str,
                vendor: Iterable[str] = ()) -> Recipe:
    """The two trees, from every file of the project (relative paths, as the builder sees them), the parsed
    manifests of its local packages by directory (``""`` for the root; a virtual workspace's root manifest
    too), the directory of the package whose binary is shipped, and the vendored crates' directories."""
    file_set = set(files)
    package_dirs = sorted((d for d, m in manifests.items() if "package" in m), key=len, reverse=True)
    deps: dict[str, str | None] = {}
    for directory in manifests:
        deps[_join(directory, "Cargo.toml")] = None
    for f in ("Cargo.lock", *ROOT_FILES):
        if f in file_set:
            deps[f] = None
    vendored = [v for v in (os.path.normpath(v) for v in vendor) if not v.startswith("..") and not os.path.isabs(v)]
    for f in file_set:
        if any(_under(f, v) for v in vendored):
            deps[f] = None
    for directory in package_dirs:
        prefix = "" if directory == "" else directory + "/"
        own = [f[len(prefix):] for f in file_set if f.startswith(prefix)]
        for target in package_targets(manifests[directory], own):
            deps[_join(directory, target.path)] = target.source

    def owner(path: str) -> str | None:  # the innermost local package directory holding the file
        return next((d for d in package_dirs if _under(path, d)), None)

    built = "" if built in (".", "") else os.path.normpath(built)
    workspace = tuple(sorted(f for f in file_set
                             if deps.get(f, "") is not None and owner(f) not in (None, built)))
    return Recipe(deps=dict(sorted(deps.items())), workspace=workspace)


# --- the disk side -------------------------------------------------------------------------------------

def project_files(root: Path) -> list[str]:
    """Every file of the project the builder would see (no target dirs, VCS data or .env files)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            if not _skipped_file(name):
                found.append((rel / name).as_posix())
        for name in dirnames:  # symlinked directories are files to the builder's COPY
            if (Path(dirpath) / name).is_symlink():
                found.append((rel / name).as_posix())
    return sorted(found)


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def local_manifests(root: Path) -> dict[str, dict[str, Any]]:
    """The parsed manifests of the project's local packages by directory (relative, ``""`` = the root):
    the root manifest, the workspace members and, transitively, every path dependency inside the project."""
    root = root.resolve()
    found: dict[str, dict[str, Any]] = {}
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            rel = directory.relative_to(root).as_posix()
        except ValueError:
            continue  # outside the project: not in the build context either
        rel = "" if rel == "." else rel
        if rel in found or not (directory / "Cargo.toml").is_file():
            continue
        manifest = found[rel] = _toml(directory / "Cargo.toml")
        workspace = manifest.get("workspace", {}) or {}
        excluded = {(directory / e).resolve() for e in workspace.get("exclude", []) or []}
        for pattern in workspace.get("members", []) or []:
            pending += [m.resolve() for m in sorted(directory.glob(pattern)) if m.resolve() not in excluded]
        pending += [(directory / p).resolve() for p in path_dependencies(manifest)]
    return found


def package_directory(manifests: Mapping[str, Mapping[str, Any]], package: str) -> str:
    """The directory of cargo package ``package`` among the local manifests ("" = the root package)."""
    for directory, manifest in manifests.items():
        if package and (manifest.get("package", {}) or {}).get("name") == package:
            return directory
    return ""


def probe_recipe(root: Path, *, package: str = "") -> Recipe:
    """The recipe of the project at ``root`` for the binary of cargo package ``package`` ("" = the root's)."""
    config = _toml(root / ".cargo" / "config.toml") or _toml(root / ".cargo" / "config")
    manifests = local_manifests(root)
    return plan_recipe(project_files(root), manifests, built=package_directory(manifests, package),
                       vendor=source_directories(config))


def _place(source: Path, dest: Path) -> None:
    """The project's file in the staged tree: a hard link where the filesystem allows (no copy of a large
    vendor directory on every build), else a copy; symbolic links stay links."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        dest.symlink_to(os.readlink(source))
        return
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def write_recipe(root: Path, recipe: Recipe) -> Path:
    """Stage the trees under ``root/target/crossdock/recipe/<layer>/`` (replacing what an earlier build
    left there); returns the recipe directory."""
    staged = root / RECIPE_DIR
    fresh = staged.with_name(staged.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    for layer in LAYERS:
        (fresh / layer).mkdir(parents=True)
        for rel, stub in recipe.layer(layer).items():
            dest = fresh / layer / rel
            if stub is None:
                _place(root / rel, dest)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(stub)
    shutil.rmtree(staged, ignore_errors=True)
    fresh.rename(staged)
    return staged
