"""SBOM assembly (CycloneDX 1.5 JSON), one document per platform. Pure: text in, dicts out.

Inputs, per platform, exported from the build by ``docker buildx build --target sbom`` (docker/Dockerfile):
``cargo-metadata.json`` (``cargo metadata --filter-platform <target>``: target-specific dependencies of
other platforms are already gone), ``Cargo.lock`` (checksums), ``rustc.txt`` (``rustc -vV``) and
``dpkg/status`` (every Debian package of the runtime image, for every flavour).

Crates: the closure of *normal* dependencies from the package that builds the binary, never descending
into proc-macro crates: exactly what is linked into the binary. Build dependencies, proc-macros and what
only they pull in run on the build machine; they are listed with ``scope: excluded`` (they shaped the
binary but are not in it). Dev-dependencies are left out.
"""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .buildx import STAGED_DIR, buildx_prefix, network_args
from .errors import CrossdockError

SPEC_VERSION = "1.5"
PREDICATE_TYPE = "https://cyclonedx.org/bom"  # what `cosign attest --type cyclonedx` records
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


class SbomError(CrossdockError):
    """SBOM inputs that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Crate:
    name: str
    version: str
    source: str  # cargo's source id ('' for a path/workspace crate)
    license: str
    checksum: str  # sha256 from Cargo.lock ('' for path and git crates)
    kind: str = "linked"  # linked (in the binary) | build (build script, proc-macro: build machine only)

    @property
    def purl(self) -> str:
        purl = f"pkg:cargo/{self.name}@{quote(self.version, safe='+.-_~')}"
        if self.source.startswith("git+"):
            purl += "?vcs_url=" + quote(self.source, safe="")
        elif self.source.startswith("registry+") and self.source != CRATES_IO:
            purl += "?repository_url=" + quote(self.source.removeprefix("registry+"), safe="")
        return purl


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    architecture: str
    source: str = ""

    @property
    def purl(self) -> str:
        return f"pkg:deb/debian/{self.name}@{quote(self.version, safe='+.-_~')}?arch={self.architecture}"


# --- Debian ---------------------------------------------------------------------------------------------

def parse_dpkg_status(text: str) -> list[DebPackage]:
    """Installed packages (``Status: install ok installed``) of a dpkg status file, sorted by name."""
    packages = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t"):
                continue  # a continuation line (Description, Conffiles)
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if not fields.get("package"):
            continue
        status = fields.get("status", "install ok installed").split()
        if status[-1:] != ["installed"]:
            continue
        source = fields.get("source", "").split(" ")[0]
        packages.append(DebPackage(name=fields["package"], version=fields.get("version", ""),
                                   architecture=fields.get("architecture", ""), source=source))
    return sorted(packages, key=lambda p: (p.name, p.architecture))


# --- Rust -----------------------------------------------------------------------------------------------

def lock_checksums(lock_text: str) -> dict[tuple[str, str, str], str]:
    """(name, version, source) -> sha256 checksum, from Cargo.lock (v1's [metadata] table too)."""
    if not lock_text.strip():
        return {}
    try:
        lock = tomllib.loads(lock_text)
    except tomllib.TOMLDecodeError as e:
        raise SbomError(f"Cargo.lock is not TOML: {e}") from None
    sums: dict[tuple[str, str, str], str] = {}
    for pkg in lock.get("package", []):
        if pkg.get("checksum"):
            sums[(pkg["name"], pkg["version"], pkg.get("source", ""))] = pkg["checksum"]
    for key, value in (lock.get("metadata") or {}).items():  # v1: "checksum NAME VERSION (SOURCE)" = "..."
        m = re.match(r"^checksum (\S+) (\S+) \((.*)\)$", key)
        if m and value != "<none>":
            sums[(m.group(1), m.group(2), m.group(3))] = value
    return sums


def _root_id(metadata: Mapping, package: str, bin: str) -> str:
    members = set(metadata.get("workspace_members") or [])
    packages = [p for p in metadata.get("packages", []) if p["id"] in members] or metadata.get("packages", [])
    if package:
        found = [p for p in packages if p["name"] == package]
    else:
        found = [p for p in packages if any(t["name"] == bin and "bin" in t.get("kind", []) for t in p["targets"])]
        found = found or [p for p in packages if p["name"] == bin]
    if not found:
        root = (metadata.get("resolve") or {}).get("root")
        if root:
            return root
        raise SbomError(f"cargo metadata names no package building {package or bin!r}")
    return found[0]["id"]


def crates_in_binary(metadata: Mapping, lock_text: str, *, bin: str, package: str = "") -> tuple[
        Crate, list[Crate], dict[str, list[str]]]:
    """(the package that builds `bin`, every other crate, dependency graph by purl) from ``cargo metadata
    --filter-platform`` output and Cargo.lock. Linked crates first, then build-machine crates, each sorted."""
    by_id = {p["id"]: p for p in metadata.get("packages", [])}
    nodes = {n["id"]: n for n in (metadata.get("resolve") or {}).get("nodes", [])}
    if not nodes:
        raise SbomError("cargo metadata has no dependency graph (resolve.nodes): was it run with --no-deps?")
    root = _root_id(metadata, package, bin)
    sums = lock_checksums(lock_text)

    def proc_macro(pid: str) -> bool:
        return any("proc-macro" in t.get("kind", []) for t in by_id[pid].get("targets", []))

    def edges(pid: str, kinds: set[str | None]) -> Iterable[str]:
        for dep in nodes.get(pid, {}).get("deps", []):
            dep_kinds = {k.get("kind") for k in dep.get("dep_kinds") or [{"kind": None}]}
            if dep_kinds & kinds:
                yield dep["pkg"]

    linked: set[str] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in linked:
            continue
        linked.add(pid)
        todo += [d for d in edges(pid, {None}) if not proc_macro(d)]
    host: set[str] = set()
    todo = [d for pid in linked for d in edges(pid, {None, "build"}) if d not in linked]
    while todo:
        pid = todo.pop()
        if pid in host or pid in linked:
            continue
        host.add(pid)
        todo += list(edges(pid, {None, "build"}))

    def crate(pid: str, kind: str) -> Crate:
        p = by_id[pid]
        source = p.get("source") or ""
        checksum = sums.get((p["name"], p["version"], source)) or ""
        return Crate(name=p["name"], version=p["version"], source=source, license=p.get("license") or "",
                     checksum=checksum, kind=kind)

    crates = {pid: crate(pid, "linked") for pid in linked} | {pid: crate(pid, "build") for pid in host}
    graph = {crates[pid].purl: sorted(crates[d].purl for d in edges(pid, {None, "build"}) if d in crates)
             for pid in crates}
    others = sorted((c for pid, c in crates.items() if pid != root), key=lambda c: (c.kind != "linked", c.name,
                                                                                     c.version))
    return crates[root], others, graph


# --- the document ---------------------------------------------------------------------------------------

def _crate_component(c: Crate, *, app: bool = False) -> dict:
    comp: dict = {"type": "application" if app else "library", "bom-ref": c.purl, "name": c.name,
                  "version": c.version, "purl": c.purl}
    if c.kind != "linked":
        comp["scope"] = "excluded"
    if c.checksum:
        comp["hashes"] = [{"alg": "SHA-256", "content": c.checksum}]
    if c.license:
        comp["licenses"] = [{"expression": c.license}]
    props = [{"name": "crossdock:cargo:source", "value": c.source or "path"}]
    if c.kind != "linked":
        props.append({"name": "crossdock:cargo:dependency", "value": "build machine only (build script or "
                                                                    "proc-macro), not linked into the binary"})
    comp["properties"] = props
    return comp


def _deb_component(p: DebPackage) -> dict:
    props = [{"name": "crossdock:deb:architecture", "value": p.architecture}]
    if p.source:
        props.append({"name": "crossdock:deb:source", "value": p.source})
    return {"type": "library", "bom-ref": p.purl, "name": p.name, "version": p.version, "purl": p.purl,
            "properties": props}


def cyclonedx(*, app: Crate, crates: Sequence[Crate], graph: Mapping[str, list[str]], debs: Sequence[DebPackage],
              repository: str, digest: str, platform: str, rust_target: str, rustc: str = "",
              timestamp: str = "", image_version: str = "") -> dict:
    """The CycloneDX document of one platform's image ``repository@digest``: its application crate, the
    crates linked into it (and, excluded, those that only ran on the build machine), its Debian packages."""
    arch = platform.split("/", 1)[1].replace("/", "")
    image_ref = f"pkg:oci/{repository.rsplit('/', 1)[-1]}@{quote(digest, safe='')}" \
                f"?repository_url={quote(repository, safe='')}&arch={arch}"
    props = [{"name": "crossdock:platform", "value": platform}, {"name": "crossdock:rust-target", "value": rust_target}]
    if rustc:
        props.append({"name": "crossdock:rustc", "value": rustc})
    metadata: dict = {
        "tools": {"components": [{"type": "application", "name": "crossdock"}]},
        "component": {"type": "container", "bom-ref": image_ref, "name": repository,
                      "version": image_version or digest, "purl": image_ref,
                      "hashes": [{"alg": "SHA-256", "content": digest.removeprefix("sha256:")}]},
        "properties": props,
    }
    if timestamp:
        metadata["timestamp"] = timestamp
    seen: set[str] = set()
    components = []
    for comp in [_crate_component(app, app=True), *(_crate_component(c) for c in crates),
                 *(_deb_component(p) for p in debs)]:
        ref = comp["bom-ref"]
        if ref in seen:  # the same package twice (two architectures of one name are distinct purls)
            continue
        seen.add(ref)
        components.append(comp)
    dependencies = [{"ref": image_ref, "dependsOn": [app.purl, *(p.purl for p in debs)]}]
    dependencies += [{"ref": ref, "dependsOn": deps} for ref, deps in sorted(graph.items())]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{repository}@{digest}')}",
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
    }


def rustc_release(text: str) -> str:
    """``rustc 1.85.0 (…)`` from ``rustc -vV`` output ('' if absent)."""
    return text.strip().splitlines()[0] if text.strip() else ""


def assemble(inputs: Path, *, repository: str, digest: str, platform: str, rust_target: str, bin: str,
             package: str = "", timestamp: str = "", image_version: str = "") -> dict:
    """The CycloneDX document from one platform's exported SBOM inputs (``--target sbom`` output dir)."""
    try:
        metadata = json.loads((inputs / "cargo-metadata.json").read_text())
    except (OSError, ValueError) as e:
        raise SbomError(f"cannot read {inputs / 'cargo-metadata.json'}: {e}") from None
    lock = inputs / "Cargo.lock"
    status = inputs / "dpkg" / "status"
    rustc = inputs / "rustc.txt"
    app, crates, graph = crates_in_binary(metadata, lock.read_text() if lock.is_file() else "", bin=bin,
                                          package=package)
    debs = parse_dpkg_status(status.read_text(errors="replace")) if status.is_file() else []
    return cyclonedx(app=app, crates=crates, graph=graph, debs=debs, repository=repository, digest=digest,
                     platform=platform, rust_target=rust_target,
                     rustc=rustc_release(rustc.read_text()) if rustc.is_file() else "",
                     timestamp=timestamp, image_version=image_version)


def contents(bom: Mapping) -> tuple[list[str], list[str]]:
    """(crate names linked into the binary, Debian package names) of a CycloneDX document crossdock made."""
    crates, debs = [], []
    for comp in bom.get("components", []):
        purl = comp.get("purl", "")
        if purl.startswith("pkg:cargo/") and comp.get("scope") != "excluded":
            crates.append(comp["name"])
        elif purl.startswith("pkg:deb/"):
            debs.append(comp["name"])
    return crates, debs


def sbom_build_argv(*, builder: str, platform: str, project: Path, build_args: Mapping[str, str],
                    dest: Path, network: str = "default", compile_args: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The second, cheap build of one platform: the same Dockerfile and build arguments as the image (so
    every stage is a cache hit; ``compile_args``: the image's binaries came from a joint compile), target
    ``sbom``, exported to ``dest`` on this machine. Nothing is pushed."""
    args = [*buildx_prefix(builder), "build", "--platform", platform,
            "--file", str(project / STAGED_DIR / "Dockerfile"), "--progress", "plain", "--provenance", "false",
            "--target", "sbom"]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    return (*args, *compile_args, *network_args(network), "--output", f"type=local,dest={dest}", str(project))
