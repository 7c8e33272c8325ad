"""The pure supply-chain parts: SBOM assembly from cargo metadata, Cargo.lock and a dpkg status; the SBOM
build's command; cosign's commands (offline, password only in cosign's environment); attestation parsing;
the release record comparison of `inv verify`."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tasks.core.references import IndexEntry
from tasks.core.sbom import (
    CRATES_IO,
    PREDICATE_TYPE,
    SbomError,
    assemble,
    contents,
    crates_in_binary,
    cyclonedx,
    lock_checksums,
    parse_dpkg_status,
    sbom_build_argv,
)
from tasks.engine.cosign import Cosign, parse_attestations
from tasks.steps.verify import record_problems

ROOT = "path+file:///src#app@1.0.0"


def pkg(name: str, version: str, *, source: str | None = CRATES_IO, license: str | None = "MIT",
        kind: str = "lib") -> dict:
    pid = ROOT if name == "app" else f"{source}#{name}@{version}"
    return {"name": name, "version": version, "id": pid, "source": source, "license": license,
            "targets": [{"name": name, "kind": [kind]}]}


def dep(target: dict, *kinds: str | None) -> dict:
    return {"name": target["name"], "pkg": target["id"], "dep_kinds": [{"kind": k, "target": None} for k in kinds]}


APP = pkg("app", "1.0.0", source=None, license="Apache-2.0", kind="bin")
SERDE = pkg("serde", "1.0.200")
LIBC = pkg("libc", "0.2.150", license="MIT OR Apache-2.0")
DERIVE = pkg("serde_derive", "1.0.200", kind="proc-macro")
SYN = pkg("syn", "2.0.60")
CC = pkg("cc", "1.0.90")
PROPTEST = pkg("proptest", "1.4.0")
GITDEP = pkg("gitdep", "0.1.0", source="git+https://example.invalid/gitdep?rev=abc#abc", license=None)

# What `cargo metadata --filter-platform` printed: winapi (a Windows-only dependency) is already gone.
METADATA = {
    "packages": [APP, SERDE, LIBC, DERIVE, SYN, CC, PROPTEST, GITDEP],
    "workspace_members": [ROOT],
    "resolve": {"root": ROOT, "nodes": [
        {"id": ROOT, "deps": [dep(SERDE, None), dep(DERIVE, None), dep(CC, "build"), dep(PROPTEST, "dev"),
                              dep(GITDEP, None)]},
        {"id": SERDE["id"], "deps": [dep(LIBC, None)]},
        {"id": DERIVE["id"], "deps": [dep(SYN, None)]},
        {"id": LIBC["id"], "deps": []}, {"id": SYN["id"], "deps": []}, {"id": CC["id"], "deps": []},
        {"id": PROPTEST["id"], "deps": [dep(SERDE, None)]}, {"id": GITDEP["id"], "deps": []},
    ]},
}
LOCK = f"""version = 4

[[package]]
name = "app"
version = "1.0.0"

[[package]]
name = "serde"
version = "1.0.200"
source = "{CRATES_IO}"
checksum = "{'a' * 64}"

[[package]]
name = "libc"
version = "0.2.150"
source = "{CRATES_IO}"
checksum = "{'b' * 64}"
"""

STATUS = """Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.36-9+deb12u7
Source: glibc
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 .
 the system.

Package: removed-thing
Status: deinstall ok config-files
Architecture: arm64
Version: 1.0

Package: libssl3
Status: install ok installed
Architecture: arm64
Version: 1:3.0.13-1~deb12u1
Source: openssl (3.0.13-1~deb12u1)

Package: tzdata
Version: 2024a-0+deb12u1
Architecture: all
"""


def test_only_crates_linked_into_the_binary_are_in_it_the_build_machine_ones_are_excluded():
    app, crates, graph = crates_in_binary(METADATA, LOCK, bin="app")
    assert (app.name, app.kind, app.license) == ("app", "linked", "Apache-2.0")
    linked = [c.name for c in crates if c.kind == "linked"]
    build = [c.name for c in crates if c.kind == "build"]
    assert linked == ["gitdep", "libc", "serde"]  # normal dependencies, transitively
    assert build == ["cc", "serde_derive", "syn"]  # build dependency, proc-macro and what only it needs
    assert "proptest" not in linked + build  # dev-dependency
    serde = next(c for c in crates if c.name == "serde")
    assert serde.checksum == "a" * 64 and serde.source == CRATES_IO and serde.purl == "pkg:cargo/serde@1.0.200"
    git = next(c for c in crates if c.name == "gitdep")
    assert git.checksum == "" and "vcs_url=git%2Bhttps" in git.purl
    assert graph[app.purl] == sorted(["pkg:cargo/serde@1.0.200", "pkg:cargo/serde_derive@1.0.200",
                                      "pkg:cargo/cc@1.0.90", git.purl])


def test_the_package_is_found_by_binary_or_by_name_and_a_missing_graph_is_an_error():
    assert crates_in_binary(METADATA, LOCK, bin="other", package="app")[0].name == "app"
    with pytest.raises(SbomError, match="--no-deps"):
        crates_in_binary({**METADATA, "resolve": None}, LOCK, bin="app")
    with pytest.raises(SbomError, match="not TOML"):
        lock_checksums("[[package]\n")


def test_cargo_lock_v1_metadata_checksums():
    lock = f'[metadata]\n"checksum serde 1.0.0 ({CRATES_IO})" = "{"c" * 64}"\n"checksum x 1.0.0 (y)" = "<none>"\n'
    assert lock_checksums(lock) == {("serde", "1.0.0", CRATES_IO): "c" * 64}


def test_dpkg_status_lists_installed_packages_with_version_and_architecture():
    debs = parse_dpkg_status(STATUS)
    assert [(d.name, d.version, d.architecture, d.source) for d in debs] == [
        ("libc6", "2.36-9+deb12u7", "arm64", "glibc"),
        ("libssl3", "1:3.0.13-1~deb12u1", "arm64", "openssl"),
        ("tzdata", "2024a-0+deb12u1", "all", ""),  # no Status line: a plain package list
    ]
    assert debs[1].purl == "pkg:deb/debian/libssl3@1%3A3.0.13-1~deb12u1?arch=arm64"
    assert parse_dpkg_status("") == []


def test_cyclonedx_document():
    app, crates, graph = crates_in_binary(METADATA, LOCK, bin="app")
    debs = parse_dpkg_status(STATUS)
    digest = "sha256:" + "d" * 64
    bom = cyclonedx(app=app, crates=crates, graph=graph, debs=debs, repository="127.0.0.1:5000/team/app",
                    digest=digest, platform="linux/arm/v7", rust_target="armv7-unknown-linux-gnueabihf",
                    rustc="rustc 1.85.0", timestamp="2026-01-01T00:00:00Z", image_version="1.0.0")
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
    again = cyclonedx(app=app, crates=crates, graph=graph, debs=debs, repository="127.0.0.1:5000/team/app",
                      digest=digest, platform="linux/arm/v7", rust_target="armv7-unknown-linux-gnueabihf")
    assert bom["serialNumber"] == again["serialNumber"]  # the same image, the same serial number
    image = bom["metadata"]["component"]
    assert image["type"] == "container" and image["hashes"][0]["content"] == "d" * 64 and "arch=armv7" in image["purl"]
    props = {p["name"]: p["value"] for p in bom["metadata"]["properties"]}
    assert props == {"crossdock:platform": "linux/arm/v7", "crossdock:rust-target": "armv7-unknown-linux-gnueabihf",
                     "crossdock:rustc": "rustc 1.85.0"}
    by_name = {c["name"]: c for c in bom["components"]}
    assert by_name["app"]["type"] == "application" and by_name["app"]["licenses"] == [{"expression": "Apache-2.0"}]
    assert by_name["serde"]["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}] and "scope" not in by_name["serde"]
    assert by_name["syn"]["scope"] == "excluded" and "licenses" not in by_name["gitdep"]
    assert {p["name"]: p["value"] for p in by_name["libc6"]["properties"]} == {
        "crossdock:deb:architecture": "arm64", "crossdock:deb:source": "glibc"}
    crates_, debs_ = contents(bom)
    assert crates_ == ["app", "gitdep", "libc", "serde"] and debs_ == ["libc6", "libssl3", "tzdata"]
    refs = {c["bom-ref"] for c in bom["components"]} | {image["bom-ref"]}
    for d in bom["dependencies"]:  # every reference resolves inside the document
        assert d["ref"] in refs and set(d["dependsOn"]) <= refs


def test_assemble_from_exported_inputs(tmp_path):
    (tmp_path / "dpkg").mkdir()
    (tmp_path / "dpkg" / "status").write_text(STATUS)
    (tmp_path / "cargo-metadata.json").write_text(json.dumps(METADATA))
    (tmp_path / "Cargo.lock").write_text(LOCK)
    (tmp_path / "rustc.txt").write_text("rustc 1.85.0 (4d91de4e4 2025-02-17)\nbinary: rustc\n")
    bom = assemble(tmp_path, repository="r/app", digest="sha256:" + "e" * 64, platform="linux/amd64",
                   rust_target="x86_64-unknown-linux-gnu", bin="app")
    assert contents(bom) == (["app", "gitdep", "libc", "serde"], ["libc6", "libssl3", "tzdata"])
    (tmp_path / "cargo-metadata.json").write_text("{not json")
    with pytest.raises(SbomError, match="cargo-metadata.json"):
        assemble(tmp_path, repository="r/app", digest="sha256:" + "e" * 64, platform="linux/amd64",
                 rust_target="x", bin="app")


def test_the_sbom_build_is_the_image_build_with_another_target_and_a_local_output(tmp_path):
    args = {"BIN": "app", "RUNTIME": "minimal"}
    argv = sbom_build_argv(builder="", platform="linux/arm64", project=tmp_path, build_args=args,
                           dest=tmp_path / "out")
    assert argv[:5] == ("docker", "buildx", "build", "--platform", "linux/arm64")
    assert ("--target", "sbom") == argv[argv.index("--target"):argv.index("--target") + 2]
    assert f"type=local,dest={tmp_path / 'out'}" in argv and argv[-1] == str(tmp_path)
    assert "--push" not in argv and "--tag" not in argv and "RUNTIME=minimal" in argv
    assert sbom_build_argv(builder="remote", platform="linux/amd64", project=tmp_path, build_args={},
                           dest=tmp_path)[:4] == ("docker", "buildx", "--builder", "remote")


class FakeContext:
    def __init__(self):
        self.config = SimpleNamespace(run=SimpleNamespace(dry=False))
        self.calls: list[tuple[str, dict]] = []

    def run(self, command, **options):
        self.calls.append((command, options))
        return SimpleNamespace(ok=True, stdout="", stderr="", exited=0)


def test_cosign_signs_offline_with_the_password_only_in_its_own_environment(tmp_path):
    c = FakeContext()
    cosign = Cosign(c, password="Key-Pass-1")
    cosign.sign("/k/cosign.key", "127.0.0.1:5000/app@sha256:" + "1" * 64)
    cosign.attest_sbom("/k/cosign.key", "registry.example.com/app@sha256:" + "2" * 64, tmp_path / "a.json")
    cosign.verify(tmp_path / "cosign.pub", "127.0.0.1:5000/app@sha256:" + "1" * 64)
    (sign, sign_opts), (attest, attest_opts), (verify, verify_opts) = c.calls
    assert "--tlog-upload=false" in sign and "--recursive" in sign and "--allow-http-registry" in sign
    assert "--type cyclonedx" in attest and "--tlog-upload=false" in attest and "--allow-http-registry" not in attest
    assert "--insecure-ignore-tlog" in verify
    for command, options in c.calls:
        assert "Key-Pass-1" not in command and options["in_stream"] is False  # never prompts
    assert sign_opts["env"] == attest_opts["env"] == {"COSIGN_PASSWORD": "Key-Pass-1"}
    assert verify_opts["env"] == {"COSIGN_PASSWORD": ""}  # verifying needs no secret


def test_attestations_are_read_from_dsse_envelopes():
    statement = {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": PREDICATE_TYPE,
                 "subject": [{"name": "r/app", "digest": {"sha256": "f" * 64}}],
                 "predicate": {"bomFormat": "CycloneDX"}}
    line = json.dumps({"payloadType": "application/vnd.in-toto+json",
                       "payload": base64.b64encode(json.dumps(statement).encode()).decode(), "signatures": []})
    [a] = parse_attestations(f"noise\n{line}\n{{broken\n")
    assert a.predicate_type == PREDICATE_TYPE and a.subjects == ("sha256:" + "f" * 64,)
    assert a.predicate == {"bomFormat": "CycloneDX"}


def test_record_problems_name_every_digest_that_differs():
    record = {"index_digest": "sha256:i1", "platforms": [{"platform": "linux/amd64", "digest": "sha256:a"},
                                                         {"platform": "linux/arm64", "digest": "sha256:b"}]}
    same = [IndexEntry("linux/amd64", "sha256:a"), IndexEntry("linux/arm64", "sha256:b")]
    assert record_problems(record, "sha256:i1", same) == []
    other = [IndexEntry("linux/amd64", "sha256:a"), IndexEntry("linux/arm/v7", "sha256:c")]
    assert record_problems(record, "sha256:i2", other) == [
        "index is sha256:i2, the record says sha256:i1",
        "linux/arm/v7 is sha256:c, the record says nothing",
        "linux/arm64 is missing, the record says sha256:b",
    ]


def test_the_signing_password_leaves_the_environment_and_is_redacted(monkeypatch):
    from tasks.common import redact
    from tasks.engine import secrets

    env = {"COSIGN_PASSWORD": "Sign-Pass-2", "REGISTRY_PASSWORD": "Reg-Pass-3", "OTHER": "x"}
    monkeypatch.setattr(secrets, "_store", {})
    secrets.take_from_environment(env)
    assert env == {"OTHER": "x"}
    assert secrets.signing_password() == "Sign-Pass-2"
    assert redact("cosign said Sign-Pass-2 and Reg-Pass-3") == "cosign said *** and ***"


def test_key_reference_resolves_files_and_keeps_kms_uris(tmp_path, monkeypatch):
    from tasks.steps.supply_chain import SupplyChainError, key_reference

    (tmp_path / "cosign.key").write_text("k")
    monkeypatch.chdir(tmp_path)
    assert key_reference("cosign.key") == str(Path(tmp_path / "cosign.key").resolve())
    assert key_reference("awskms:///alias/release") == "awskms:///alias/release"
    with pytest.raises(SupplyChainError, match="no such file"):
        key_reference("missing.key")
