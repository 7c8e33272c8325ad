"""The Rust project being shipped: which package builds which binary, read from Cargo manifests.

``parse_*`` and ``choose_*`` are pure (a parsed manifest and a file list in, data out);
``probe_project`` reads the disk.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CrossdockError


class ProjectError(CrossdockError):
    """The project cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    directory: str  # relative to the project root ("." for the root package)
    binaries: tuple[str, ...]
    description: str = ""
    license: str = ""
    repository: str = ""
    features: tuple[str, ...] = ()  # [features] and optional dependencies (cargo's implicit features)


@dataclass(frozen=True)
class Target:
    """What to build: the package (``""`` when the root package is meant) and the binary."""

    package: Package
    bin: str
    cargo_package: str  # value for `cargo --package` ("" when not needed)


def parse_binaries(manifest: Mapping[str, Any], files: Iterable[str]) -> tuple[str, ...]:
    """Binaries a package builds: explicit ``[[bin]]`` targets plus Cargo's auto-discovered ones.

    ``files`` are paths relative to the package directory (``src/main.rs``, ``src/bin/x.rs``, ...).
    """
    package = manifest.get("package", {})
    names: list[str] = [b["name"] for b in manifest.get("bin", []) if "name" in b]
    explicit_paths = {b.get("path") for b in manifest.get("bin", [])}
    if package.get("autobins", True):
        file_set = set(files)
        if "src/main.rs" in file_set and "src/main.rs" not in explicit_paths:
            names.append(package.get("name", ""))
        for f in sorted(file_set):
            parts = f.split("/")
            if f in explicit_paths or len(parts) < 3 or parts[:2] != ["src", "bin"]:
                continue
            if len(parts) == 3 and parts[2].endswith(".rs"):
                names.append(parts[2][:-3])
            elif len(parts) == 4 and parts[3] == "main.rs":
                names.append(parts[2])
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return tuple(seen)


def _field(package: Mapping[str, Any], key: str, workspace_package: Mapping[str, Any]) -> str:
    value = package.get(key, "")
    if isinstance(value, dict) and value.get("workspace"):
        value = workspace_package.get(key, "")
    return value if isinstance(value, str) else ""


def parse_package(manifest: Mapping[str, Any], files: Iterable[str], *, directory: str = ".",
                  workspace_package: Mapping[str, Any] | None = None) -> Package:
    pkg = manifest["package"]
    ws = workspace_package or {}
    return Package(
        name=pkg["name"],
        version=_field(pkg, "version", ws) or "0.0.0",
        directory=directory,
        binaries=parse_binaries(manifest, files),
        description=_field(pkg, "description", ws),
        license=_field(pkg, "license", ws),
        repository=_field(pkg, "repository", ws),
        features=parse_features(manifest),
    )


def parse_features(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The features ``--features`` may name: the ``[features]`` table and the optional dependencies (of every
    dependency table, target-specific ones included)."""
    names = list(manifest.get("features", {}))
    tables = [manifest] + [t for t in (manifest.get("target") or {}).values() if isinstance(t, dict)]
    for table in tables:
        for key in ("dependencies", "build-dependencies"):
            for name, dep in (table.get(key) or {}).items():
                if isinstance(dep, dict) and dep.get("optional"):
                    names.append(name)
    return tuple(dict.fromkeys(names))


def choose_target(packages: tuple[Package, ...], *, bin: str = "", package: str = "",
                  root_package: str = "") -> Target:
    """Pick the package and binary to ship, or explain why none or several fit."""
    if not packages:
        raise ProjectError("the project has no Cargo package (a workspace with no members?)")
    candidates = packages
    if package:
        candidates = tuple(p for p in packages if p.name == package or p.directory == package)
        if not candidates:
            raise ProjectError(f"no package {package!r} in the project; packages: "
                               f"{', '.join(p.name for p in packages)}")
    if bin:
        owners = tuple(p for p in candidates if bin in p.binaries)
        if not owners:
            built = ", ".join(f"{b} ({p.name})" for p in candidates for b in p.binaries) or "none"
            raise ProjectError(f"the project builds no binary named {bin!r}; binaries: {built}. "
                               f"Set --bin (or CROSSDOCK_BIN) to one of them.")
        if len(owners) > 1:
            raise ProjectError(f"binary {bin!r} is built by several packages "
                               f"({', '.join(p.name for p in owners)}): choose one with --package")
        owner = owners[0]
    else:
        all_bins = [(p, b) for p in candidates for b in p.binaries]
        if not all_bins:
            raise ProjectError("the project builds no binary (no src/main.rs, src/bin/ or [[bin]]): "
                               "crossdock ships a binary")
        named_like_package = [(p, b) for p, b in all_bins if b == p.name]
        if len(all_bins) == 1:
            owner, bin = all_bins[0]
        elif len(named_like_package) == 1:
            owner, bin = named_like_package[0]
        else:
            raise ProjectError(f"the project builds several binaries ({', '.join(b for _, b in all_bins)}): "
                               f"choose one with --bin (or CROSSDOCK_BIN)")
    needs_package = len(packages) > 1 or owner.name != root_package
    return Target(package=owner, bin=bin, cargo_package=owner.name if needs_package else "")


def _package_files(directory: Path) -> list[str]:
    files = []
    if (directory / "src" / "main.rs").is_file():
        files.append("src/main.rs")
    bin_dir = directory / "src" / "bin"
    if bin_dir.is_dir():
        for entry in bin_dir.iterdir():
            if entry.is_file() and entry.suffix == ".rs":
                files.append(f"src/bin/{entry.name}")
            elif (entry / "main.rs").is_file():
                files.append(f"src/bin/{entry.name}/main.rs")
    return files


def _load(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ProjectError(f"{path} is not valid TOML: {e}") from e


def probe_project(root: Path) -> tuple[tuple[Package, ...], str]:
    """Read ``root/Cargo.toml`` (and workspace members'): the packages and the root package's name."""
    manifest_path = root / "Cargo.toml"
    if not root.is_dir():
        raise ProjectError(f"project directory {root} does not exist (set --project or CROSSDOCK_PROJECT)")
    if not manifest_path.is_file():
        raise ProjectError(f"{root} has no Cargo.toml: point --project (or CROSSDOCK_PROJECT) at the "
                           f"directory of your Rust project's Cargo.toml")
    manifest = _load(manifest_path)
    workspace = manifest.get("workspace", {})
    ws_package = workspace.get("package", {})
    packages: list[Package] = []
    root_name = ""
    if "package" in manifest:
        root_name = manifest["package"]["name"]
        packages.append(parse_package(manifest, _package_files(root), workspace_package=ws_package))
    excluded = {(root / e).resolve() for e in workspace.get("exclude", [])}
    for pattern in workspace.get("members", []):
        for member_dir in sorted(root.glob(pattern)):
            member_manifest = member_dir / "Cargo.toml"
            if member_dir.resolve() in excluded or not member_manifest.is_file() or member_dir == root:
                continue
            m = _load(member_manifest)
            if "package" in m:
                rel = member_dir.relative_to(root).as_posix()
                packages.append(parse_package(m, _package_files(member_dir), directory=rel,
                                              workspace_package=ws_package))
    return tuple(packages), root_name


def lockfile_problems(lock: Mapping[str, Any], packages: Iterable[Package]) -> dict[str, str]:
    """Where ``Cargo.lock`` disagrees with the project's own manifests (a version bumped by hand): cargo's
    ``--locked`` build would fail on every arch. Pure: the parsed lock file in, problems out."""
    local: dict[str, list[str]] = {}
    for entry in lock.get("package", []):
        if "source" not in entry and "name" in entry:  # the project's own (path) packages have no source
            local.setdefault(entry["name"], []).append(str(entry.get("version", "")))
    problems = {}  # package name -> what disagrees
    for p in packages:
        locked = local.get(p.name)
        if locked is None:
            problems[p.name] = f"{p.name} {p.version} is not in Cargo.lock"
        elif p.version not in locked:
            problems[p.name] = f"Cargo.toml says {p.name} {p.version}, Cargo.lock says {', '.join(locked)}"
    return problems


def check_lockfile(root: Path, packages: Iterable[Package]) -> None:
    """Refuse a stale ``Cargo.lock`` before any build, with the fix (no lock file: nothing to check)."""
    lock_path = root / "Cargo.lock"
    if not lock_path.is_file():
        return
    problems = lockfile_problems(_load(lock_path), packages)
    if problems:
        update = " ".join(f"-p {name}" for name in sorted(problems))
        raise ProjectError(f"{lock_path} is out of date ({'; '.join(problems.values())}): builds use `cargo --locked`, "
                           f"which would fail on every platform. Fix: run `cargo update --offline {update}` "
                           f"(or any cargo build) in {root}, then commit Cargo.lock")


def crossdock_metadata(root: Path, *, package: str = "") -> dict[str, Any]:
    """The project's own crossdock settings: ``[workspace.metadata.crossdock]``, then the root package's
    ``[package.metadata.crossdock]``, then (with ``package``) that workspace member's. Missing or unreadable
    manifests give nothing here: the task names the problem when it reads the project."""
    try:
        manifest = tomllib.loads((root / "Cargo.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    result: dict[str, Any] = {}
    for table in (manifest.get("workspace", {}), manifest.get("package", {})):
        result.update((table.get("metadata") or {}).get("crossdock") or {})
    if package and package != manifest.get("package", {}).get("name"):
        for pattern in manifest.get("workspace", {}).get("members", []):
            for member in sorted(root.glob(pattern)):
                try:
                    m = tomllib.loads((member / "Cargo.toml").read_text())
                except (OSError, tomllib.TOMLDecodeError):
                    continue
                if m.get("package", {}).get("name") == package or member.relative_to(root).as_posix() == package:
                    result.update((m["package"].get("metadata") or {}).get("crossdock") or {})
    return result
