from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tasks.core.checks import (
    Check,
    Expectations,
    PlatformSmoke,
    check_binary,
    check_metadata,
    check_run,
    emulator_hint,
    junit_xml,
)
from tasks.core.elf import ElfInfo
from tasks.core.platforms import lookup
from tasks.core.references import parse_index, repository_of

LABELS = {"org.opencontainers.image.version": "1.0.0", "org.opencontainers.image.revision": "abc",
          "org.opencontainers.image.created": "2026-01-01T00:00:00Z", "org.opencontainers.image.source": ""}
EXPECT = Expectations(version="1.0.0", revision="abc", created="2026-01-01T00:00:00Z", source="",
                      package_version="1.0.0")


def config(arch="arm64", variant="", user="10001:10001", labels=None, entrypoint=("/usr/local/bin/app",)):
    cfg = {"Os": "linux", "Architecture": arch,
           "Config": {"User": user, "Entrypoint": list(entrypoint), "Labels": LABELS if labels is None else labels}}
    if variant:
        cfg["Variant"] = variant
    return cfg


def failed(checks):
    return [c.name for c in checks if not c.ok]


def test_good_metadata_passes():
    assert failed(check_metadata(lookup("arm64"), config(), EXPECT)) == []
    assert failed(check_metadata(lookup("arm/v7"), config("arm", "v7"), EXPECT)) == []


def test_platform_mismatch_root_user_and_missing_label_are_named():
    labels = {k: v for k, v in LABELS.items() if not k.endswith("revision")}
    checks = check_metadata(lookup("arm/v7"), config("arm", "v6", user="", labels=labels), EXPECT)
    assert failed(checks) == ["platform", "non-root user", "label revision"]
    assert failed(check_metadata(lookup("amd64"), config("amd64", user="0:0"), EXPECT)) == ["non-root user"]
    assert failed(check_metadata(lookup("amd64"), config("amd64", user="root"), EXPECT)) == ["non-root user"]


def test_labels_must_equal_what_the_build_recorded():
    other = Expectations(version="2.0.0", revision="abc", created="2026-01-01T00:00:00Z", source="")
    (bad,) = [c for c in check_metadata(lookup("arm64"), config(), other) if not c.ok]
    assert bad.name == "label version" and "'2.0.0'" in bad.detail


def elf(machine, elf_class=64, endian="little", float_abi="", arm_arch="", needed=("GLIBC_2.34",)):
    return ElfInfo(machine=machine, elf_class=elf_class, endian=endian, flags=0, arm_float_abi=float_abi,
                   arm_arch=arm_arch, glibc_needed=tuple(needed))


LIBC = ElfInfo(machine=0, elf_class=64, endian="little", flags=0, glibc_defined=("GLIBC_2.35", "GLIBC_2.36"))


def test_x86_binary_in_an_arm64_entry_is_caught():
    checks = check_binary(lookup("arm64"), elf(62), LIBC)
    (bad,) = [c for c in checks if not c.ok]
    assert bad.name == "ELF machine" and "amd64" in bad.detail and "arm64" in bad.detail


def test_arm_float_abi_and_version():
    v7 = lookup("arm/v7")
    assert failed(check_binary(v7, elf(40, 32, float_abi="hard", arm_arch="v7"), LIBC)) == []
    assert failed(check_binary(v7, elf(40, 32, float_abi="soft", arm_arch="v5TE"), LIBC)) == ["ARM float ABI"]
    v6 = lookup("arm/v6")
    assert failed(check_binary(v6, elf(40, 32, float_abi="hard", arm_arch="v7"), LIBC)) == [
        "ARM float ABI", "ARM architecture"]


def test_glibc_newer_than_the_runtime_is_caught():
    checks = check_binary(lookup("amd64"), elf(62, needed=("GLIBC_2.34", "GLIBC_2.38")), LIBC)
    (bad,) = [c for c in checks if not c.ok]
    assert bad.name == "glibc" and "GLIBC_2.38" in bad.detail and "GLIBC_2.36" in bad.detail
    assert failed(check_binary(lookup("amd64"), elf(62, needed=()), None)) == []  # static binary


def test_run_checks_exit_code_version_and_arch():
    p = lookup("arm64")
    with_arch = "{version} ({arch}-linux)"  # what the example asks for in its Cargo metadata
    ok = check_run(p, exit_code=0, output="app 1.0.0 (aarch64-linux)\n", expect=EXPECT, command="--version",
                   emulated=True, pattern=with_arch)
    assert ok.ok
    wrong_arch = check_run(p, exit_code=0, output="app 1.0.0 (x86_64-linux)", expect=EXPECT, command="--version",
                           emulated=True, pattern=with_arch)
    assert not wrong_arch.ok and "aarch64" in wrong_arch.detail
    # the default wants the package version only; an empty pattern only exit 0
    assert check_run(p, exit_code=0, output="app 1.0.0 (x86_64-linux)", expect=EXPECT, command="--version",
                     emulated=True).ok
    assert not check_run(p, exit_code=0, output="usage: app", expect=EXPECT, command="--help", emulated=True).ok
    assert check_run(p, exit_code=0, output="usage: app", expect=EXPECT, command="--help", emulated=True,
                     pattern="").ok
    # an image tested without its build report: the version is unknown, the rest of the text still counts
    unknown = Expectations()
    assert check_run(p, exit_code=0, output="app 9 (aarch64-linux)", expect=unknown, command="--version",
                     emulated=True, pattern=with_arch).ok
    assert not check_run(p, exit_code=0, output="app 9 (x86_64-linux)", expect=unknown, command="--version",
                         emulated=True, pattern=with_arch).ok
    crashed = check_run(p, exit_code=139, output="qemu: uncaught target signal 11", expect=EXPECT,
                        command="--version", emulated=True)
    assert not crashed.ok and "emulator" in crashed.detail
    plain_failure = check_run(p, exit_code=1, output="boom", expect=EXPECT, command="--version", emulated=True)
    assert "emulator" not in plain_failure.detail


def test_emulator_hint():
    assert "SIGILL" in emulator_hint(132, "")
    assert emulator_hint(1, "uncaught target signal 4 (Illegal instruction)")
    assert emulator_hint(1, "error") == ""


def test_index_skips_attestations():
    raw = json.dumps({"manifests": [
        {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]})
    assert [(e.platform, e.digest) for e in parse_index(raw)] == [("linux/amd64", "sha256:a"),
                                                                  ("linux/arm/v7", "sha256:b")]
    assert parse_index(json.dumps({"layers": []})) == []


def test_junit_has_one_case_per_platform_and_names_failed_checks():
    results = [PlatformSmoke(lookup("amd64"), "sha256:a", (Check("run", True, "fine"),), 1.0),
               PlatformSmoke(lookup("arm64"), "sha256:b", (Check("ELF machine", False, "binary is amd64"),), 2.0)]
    root = ET.fromstring(junit_xml(results, image="r/app:t"))
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    cases = root.findall("testcase")
    assert [c.get("name") for c in cases] == ["linux/amd64", "linux/arm64"]
    assert cases[0].find("failure") is None
    assert "ELF machine: binary is amd64" in cases[1].find("failure").get("message")


def test_repository_of():
    assert repository_of("127.0.0.1:5000/app:dev") == "127.0.0.1:5000/app"
    assert repository_of("127.0.0.1:5000/team/app@sha256:ab") == "127.0.0.1:5000/team/app"
    assert repository_of("127.0.0.1:5000/app") == "127.0.0.1:5000/app"
    assert repository_of("app:1") == "app"
