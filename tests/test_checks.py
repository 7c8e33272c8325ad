from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tasks.core.checks import (
    Check,
    Expectations,
    FileEntry,
    FileTree,
    PlatformSmoke,
    check_binary,
    check_libraries,
    check_metadata,
    check_run,
    emulator_hint,
    image_env,
    junit_xml,
    program_path,
)
from tasks.core.elf import EF_ARM_ABI_FLOAT_HARD, EF_ARM_ABI_FLOAT_SOFT, ElfInfo, parse_elf
from tasks.core.platforms import lookup
from tasks.core.references import parse_index, repository_of
from tasks.engine.docker import EngineError
from tests.elf_fixtures import EM_AARCH64, EM_ARM, make_elf, make_ld_so_cache

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
    assert failed(check_binary(v6, elf(40, 32, float_abi="hard", arm_arch="v7"), LIBC)) == ["ARM architecture"]
    assert failed(check_binary(v6, elf(40, 32, float_abi="hard", arm_arch="v6KZ"), LIBC)) == []
    v5 = lookup("arm/v5")
    assert failed(check_binary(v5, elf(40, 32, float_abi="soft", arm_arch="v5TE"), LIBC)) == []
    assert failed(check_binary(v5, elf(40, 32, float_abi="hard", arm_arch="v6"), LIBC)) == [
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


# --- the libraries check: the image's files (no Docker), resolved as glibc's loader does --------------------

LD = "/lib/ld-linux-aarch64.so.1"
MA = "/usr/lib/aarch64-linux-gnu"
ARM64 = lookup("arm64")


def lib(soname, *needed, **kw):
    return make_elf(machine=EM_AARCH64, soname=soname, needed=needed, **kw)


def program(*needed, interp=LD, **kw):
    return make_elf(machine=EM_AARCH64, interp=interp, needed=needed, **kw)


def image(files=None, links=None, *, without=()):
    """A Debian bookworm arm64 runtime in miniature: merged /usr (/lib -> usr/lib), the loader reached
    through a link, libc and libgcc_s in the multiarch directory, the program behind /usr/local/bin/app."""
    base = {f"{MA}/ld-linux-aarch64.so.1": lib("ld-linux-aarch64.so.1"),
            f"{MA}/libc.so.6": lib("libc.so.6", "ld-linux-aarch64.so.1"),
            f"{MA}/libgcc_s.so.1": lib("libgcc_s.so.1", "libc.so.6"),
            "/usr/local/bin/hello": program("libgcc_s.so.1", "libc.so.6", "ld-linux-aarch64.so.1")}
    base_links = {"/lib": "usr/lib", "/usr/lib/ld-linux-aarch64.so.1": "aarch64-linux-gnu/ld-linux-aarch64.so.1",
                  "/usr/local/bin/app": "hello", "/bin": "usr/bin"}
    base.update(files or {})
    base_links.update(links or {})
    return FileTree.in_memory({k: v for k, v in base.items() if k not in without},
                                {k: v for k, v in base_links.items() if k not in without})


def libraries(files, binary=None, *, path="/usr/local/bin/app", p=ARM64, **kw):
    elf = parse_elf(binary if binary is not None else files.read(path))
    return check_libraries(p, elf, files, binary_path=path, **kw)


def test_libraries_resolve_through_merged_usr_links():
    c = libraries(image())
    assert c.ok and c.name == "libraries", c.detail
    assert c.detail.startswith("interpreter /lib/ld-linux-aarch64.so.1; 2 libraries found in the image")
    assert "libgcc_s.so.1 (/lib/aarch64-linux-gnu/libgcc_s.so.1)" in c.detail  # the loader's first directory


def test_missing_library_is_named_with_the_directories_searched():
    c = libraries(image(without=(f"{MA}/libgcc_s.so.1",)))
    assert not c.ok
    assert c.detail == ("libgcc_s.so.1 not found (searched /lib/aarch64-linux-gnu, /usr/lib/aarch64-linux-gnu, "
                        "/lib, /usr/lib, /lib64, /usr/lib64)")
    arm = lookup("arm/v7")  # 32-bit: no lib64 directories
    binary = make_elf(machine=EM_ARM, elf_class=32, interp="/lib/ld-linux-armhf.so.3", needed=("libz.so.1",))
    files = FileTree.in_memory({"/usr/lib/arm-linux-gnueabihf/ld-linux-armhf.so.3":
                                  make_elf(machine=EM_ARM, elf_class=32, soname="ld-linux-armhf.so.3")},
                                 {"/lib": "usr/lib", "/usr/lib/ld-linux-armhf.so.3":
                                  "arm-linux-gnueabihf/ld-linux-armhf.so.3"})
    c = libraries(files, binary, p=arm, path="/app")
    assert c.detail == ("libz.so.1 not found (searched /lib/arm-linux-gnueabihf, /usr/lib/arm-linux-gnueabihf, "
                        "/lib, /usr/lib)")


def test_libraries_are_resolved_transitively():
    ssl = {"/usr/local/bin/hello": program("libssl.so.3", "libc.so.6"),
           f"{MA}/libssl.so.3": lib("libssl.so.3", "libcrypto.so.3", "libc.so.6")}
    c = libraries(image(ssl))
    assert not c.ok
    assert c.detail.startswith("libcrypto.so.3 not found (searched /lib/aarch64-linux-gnu")
    assert c.detail.endswith("needed by /lib/aarch64-linux-gnu/libssl.so.3)")
    c = libraries(image({**ssl, f"{MA}/libcrypto.so.3": lib("libcrypto.so.3", "libc.so.6")}))
    assert c.ok and "libcrypto.so.3 (/lib/aarch64-linux-gnu/libcrypto.so.3)" in c.detail


def test_every_problem_is_named_at_once_and_the_interpreter_must_exist():
    files = image({"/usr/local/bin/hello": program("liba.so.1", "libb.so.2", "libc.so.6")},
                  without=(f"{MA}/ld-linux-aarch64.so.1",))
    c = libraries(files)
    assert not c.ok
    problems = c.detail.split("; ")
    assert problems[0] == "interpreter /lib/ld-linux-aarch64.so.1 is a dangling symlink"
    assert [x.split(" ")[0] for x in problems[1:]] == ["liba.so.1", "libb.so.2"]
    gone = image(without=(f"{MA}/ld-linux-aarch64.so.1", "/usr/lib/ld-linux-aarch64.so.1"))
    assert libraries(gone).detail.startswith("interpreter /lib/ld-linux-aarch64.so.1 not found in the image")


def test_static_binary_passes_without_looking_at_the_image():
    reads = []
    files = FileTree({}, lambda path: reads.append(path) or b"")
    c = check_libraries(ARM64, parse_elf(make_elf(machine=EM_AARCH64, dynamic=False)), files)
    assert c.ok and c.detail == "static: no interpreter, no shared libraries" and reads == []
    static_pie = parse_elf(make_elf(machine=EM_AARCH64))
    assert check_libraries(ARM64, static_pie, files).detail == "static: no interpreter, no shared libraries"


def test_runpath_with_origin_is_the_binary_s_own_directory_after_links():
    files = image({"/opt/app/bin/app": program("libapp.so.1", "libc.so.6", runpath="$ORIGIN/../lib"),
                   "/opt/app/lib/libapp.so.1": lib("libapp.so.1", "libc.so.6")},
                  {"/usr/local/bin/app": "/opt/app/bin/app"})
    c = libraries(files)
    assert c.ok and "libapp.so.1 (/opt/app/bin/../lib/libapp.so.1)" in c.detail, c.detail
    # ${ORIGIN} too; without the runpath the library is not found
    braces = image({"/opt/app/bin/app": program("libapp.so.1", runpath="${ORIGIN}/../lib"),
                    "/opt/app/lib/libapp.so.1": lib("libapp.so.1")}, {"/usr/local/bin/app": "/opt/app/bin/app"})
    assert libraries(braces).ok
    plain = image({"/opt/app/bin/app": program("libapp.so.1"), "/opt/app/lib/libapp.so.1": lib("libapp.so.1")},
                  {"/usr/local/bin/app": "/opt/app/bin/app"})
    assert "libapp.so.1 not found" in libraries(plain).detail


def test_runpath_applies_to_its_own_object_only_and_rpath_is_inherited():
    def files(binary, helper):
        return image({"/opt/app/bin/app": binary, "/opt/app/lib/libapp.so.1": helper,
                      "/opt/app/lib/libhelper.so.1": lib("libhelper.so.1")}, {"/usr/local/bin/app": "/opt/app/bin/app"})

    runpath = files(program("libapp.so.1", runpath="$ORIGIN/../lib"), lib("libapp.so.1", "libhelper.so.1"))
    c = libraries(runpath)
    assert not c.ok and c.detail.startswith("libhelper.so.1 not found") and "needed by /opt/app/bin/../lib/" in c.detail
    own = files(program("libapp.so.1", runpath="$ORIGIN/../lib"),
                lib("libapp.so.1", "libhelper.so.1", runpath="$ORIGIN"))
    assert libraries(own).ok
    rpath = files(program("libapp.so.1", rpath="/opt/app/lib"), lib("libapp.so.1", "libhelper.so.1"))
    assert libraries(rpath).ok  # DT_RPATH of the loading chain, as glibc searches it
    # a DT_RUNPATH in the binary switches its DT_RPATH off
    both = files(program("libapp.so.1", rpath="/opt/app/lib", runpath="/nowhere"), lib("libapp.so.1"))
    assert "libapp.so.1 not found (searched /nowhere, " in libraries(both).detail


def test_symlink_chains_relative_absolute_dangling_and_loops():
    chain = image({"/usr/local/bin/hello": program("libfoo.so.1", "libc.so.6"),
                   "/opt/real/libfoo.so.1.2.3": lib("libfoo.so.1")},
                  {f"{MA}/libfoo.so.1": "libfoo.so.1.2", f"{MA}/libfoo.so.1.2": "../../../opt/./real/libfoo.so.1.2.3"})
    assert libraries(chain).ok
    absolute = image({"/usr/local/bin/hello": program("libfoo.so.1"), "/opt/real/libfoo.so.1.2.3": lib("libfoo.so.1")},
                     {f"{MA}/libfoo.so.1": "/opt/real/libfoo.so.1.2.3"})
    assert libraries(absolute).ok
    dangling = image({"/usr/local/bin/hello": program("libfoo.so.1")}, {f"{MA}/libfoo.so.1": "libfoo.so.1.2"})
    c = libraries(dangling)
    assert not c.ok and c.detail.endswith("[skipped: /lib/aarch64-linux-gnu/libfoo.so.1 is a dangling symlink]")
    loop = image({"/usr/local/bin/hello": program("libfoo.so.1")},
                 {f"{MA}/libfoo.so.1": "libfoo.so.2", f"{MA}/libfoo.so.2": "libfoo.so.1"})
    assert "libfoo.so.1 not found" in libraries(loop).detail
    # links resolve inside the image: '..' stops at its root
    escape = image({"/usr/local/bin/hello": program("libfoo.so.1"), "/opt/libfoo.so.1": lib("libfoo.so.1")},
                   {f"{MA}/libfoo.so.1": "../../../../../../opt/libfoo.so.1"})
    assert libraries(escape).ok


def test_a_library_of_another_machine_is_skipped_and_named():
    x86 = make_elf(machine=62, soname="libz.so.1")
    files = image({"/usr/local/bin/hello": program("libz.so.1"), "/usr/lib/libz.so.1": x86})
    c = libraries(files)
    assert not c.ok
    assert "[skipped: /lib/libz.so.1 is machine 62 (amd64), 64-bit, little-endian]" in c.detail
    files = image({"/usr/local/bin/hello": program("libz.so.1"), f"{MA}/libz.so.1": x86,
                   "/usr/lib/libz.so.1": lib("libz.so.1")})
    assert "libz.so.1 (/lib/libz.so.1)" in libraries(files).detail  # the loader goes on to the next directory
    soft = make_elf(machine=EM_ARM, elf_class=32, soname="libz.so.1", flags=EF_ARM_ABI_FLOAT_SOFT)
    hard_program = make_elf(machine=EM_ARM, elf_class=32, interp="/lib/ld-linux-armhf.so.3", needed=("libz.so.1",),
                            flags=EF_ARM_ABI_FLOAT_HARD)
    arm = FileTree.in_memory({"/lib/ld-linux-armhf.so.3": make_elf(machine=EM_ARM, elf_class=32,
                                                                     flags=EF_ARM_ABI_FLOAT_HARD),
                                "/lib/arm-linux-gnueabihf/libz.so.1": soft})
    assert "is soft-float" in libraries(arm, hard_program, p=lookup("arm/v7"), path="/app").detail
    directory = FileTree.in_memory({LD + "/oops": b""})
    assert libraries(directory, program()).detail == f"interpreter {LD} is not a regular file (dir)"


def test_ld_so_cache_and_ld_library_path_are_searched():
    local = {"/usr/local/bin/hello": program("libfoo.so.1"), "/usr/local/lib/libfoo.so.1": lib("libfoo.so.1")}
    assert not libraries(image(local)).ok
    cache = make_ld_so_cache([("libfoo.so.1", "/usr/local/lib/libfoo.so.1")])
    c = libraries(image({**local, "/etc/ld.so.cache": cache}))
    assert c.ok and "libfoo.so.1 (/usr/local/lib/libfoo.so.1)" in c.detail
    stale = make_ld_so_cache([("libfoo.so.1", "/gone/libfoo.so.1")])
    c = libraries(image({**local, "/etc/ld.so.cache": stale}))
    assert c.detail.endswith("/lib64, /usr/lib64, /etc/ld.so.cache)")  # a stale entry: not found
    assert libraries(image(local), ld_library_path=("/usr/local/lib",)).ok


def test_only_the_files_the_loader_needs_are_read():
    """The program and the libraries it needs, once each; not the interpreter (it must be a file), not the
    ld.so.cache while the directories have every library, nothing else."""
    cache = make_ld_so_cache([("libc.so.6", f"{MA}/libc.so.6")])
    base = image({"/usr/share/big/data.bin": b"x" * 100, "/etc/ld.so.cache": cache})
    reads = []
    files = FileTree(base.entries, lambda path: reads.append(path) or base.read(path))
    assert libraries(files).ok
    assert sorted(reads) == sorted(["/usr/local/bin/hello", f"{MA}/libc.so.6", f"{MA}/libgcc_s.so.1"])


def test_image_files_resolve_like_the_kernel():
    files = FileTree.in_memory({"/usr/bin/tool": b"t", "/etc/passwd": b"p"},
                               {"/bin": "usr/bin", "/a": "/b", "/b": "a", "/usr/bin/up": "../../etc/passwd"})
    assert files.walk("/bin/tool") == "/usr/bin/tool" and files.kind("/bin/tool") == "file"
    assert files.resolve("/bin/tool") == "/bin/tool"  # the last component is no link; directories: lookup's
    assert files.kind("/usr") == "dir" and files.kind("/") == "dir"  # parents not listed are directories
    assert files.resolve("/bin/up") == "/bin/../../etc/passwd" and files.read("/bin/up") == b"p"  # physical '..'
    assert files.walk("/bin/up") == "/etc/passwd"
    assert files.resolve("/a") is None and files.kind("/a") == "dangling"  # a loop
    assert files.resolve("/etc/passwd/x") is None and files.kind("/nope") == "missing"
    assert files.walk("/bin", follow_last=False) == "/bin" and files.lookup("/bin") == FileEntry("symlink", "usr/bin")
    with pytest.raises(FileNotFoundError):
        files.read("/usr/bin")
    env = image_env({"Config": {"Env": ["PATH=/opt/x:/usr/bin", "LD_LIBRARY_PATH=/opt/lib"]}})
    assert program_path(files, "tool", env) == "/usr/bin/tool" and program_path(files, "tool", {}) == "/usr/bin/tool"
    assert program_path(files, "/bin/tool", env) == "/bin/tool" and program_path(files, "nothing", env) == ""
    assert program_path(files, "./tool", env, "/usr/bin") == "/usr/bin/./tool" and files.is_file("/usr/bin/./tool")


def _tar(members):
    """A tar like `docker export` writes (names without a leading '/'), in memory."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            info.linkname = value or ""
            tar.addfile(info)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def test_image_files_from_a_docker_export_tar():
    from tasks.steps.smoke import image_files_from_tar

    ld = lib("ld-linux-aarch64.so.1")
    tar = _tar([("usr/", "dir", None), ("usr/lib/", "dir", None), ("lib", "symlink", "usr/lib"),
                ("usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "file", ld),
                ("usr/lib/ld-linux-aarch64.so.1", "symlink", "aarch64-linux-gnu/ld-linux-aarch64.so.1"),
                ("./usr/lib/aarch64-linux-gnu/libc.so.6", "file", lib("libc.so.6")),
                ("usr/local/bin/hello", "file", program("libc.so.6")),
                ("usr/local/bin/app", "hardlink", "usr/local/bin/hello"),
                ("run/fifo", "fifo", None), ("usr/share/big", "file", b"y" * 5000)])
    files = image_files_from_tar(tar, max_read=4096)
    assert files.kind("/usr/local/bin/app") == "file" and files.kind("/run/fifo") == "other"
    assert files.read("/usr/local/bin/app") == files.read("/usr/local/bin/hello")  # a hard link
    assert files.read("/lib/ld-linux-aarch64.so.1") == ld
    with pytest.raises(ValueError, match="more than the 4096"):
        files.read("/usr/share/big")
    c = libraries(files)
    assert c.ok and "libc.so.6 (/lib/aarch64-linux-gnu/libc.so.6)" in c.detail, c.detail


class ExportingEngine:
    """An engine whose `docker export` writes a prepared tar (the smoke task's file checks without Docker)."""

    def __init__(self, members, ok=True):
        self.members, self.ok = members, ok

    def api_socket(self):
        return ""  # a remote engine: no API socket here

    def export(self, container, dest, *, timeout):
        from tasks.engine.docker import Ran

        if not self.ok:
            return Ran(ok=False, stderr="Error response from daemon: No such container: c1")
        tar = _tar(self.members)
        dest.write_bytes(tar.fileobj.getvalue())
        return Ran(ok=True)


def test_smoke_file_checks_read_the_export(tmp_path):
    from tasks.steps.smoke import file_checks

    members = [("lib", "symlink", "usr/lib"),
               ("usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "file", lib("ld-linux-aarch64.so.1")),
               ("usr/lib/ld-linux-aarch64.so.1", "symlink", "aarch64-linux-gnu/ld-linux-aarch64.so.1"),
               ("usr/local/bin/hello", "file", program("libssl.so.3"))]
    checks = file_checks(ExportingEngine(members), "c1", tmp_path / "fs.tar", p=ARM64, entrypoint="hello",
                         env={"PATH": "/usr/local/bin"}, timeout=10)
    assert [(c.name, c.ok) for c in checks] == [("ELF machine", True), ("glibc", True), ("libraries", False)]
    assert checks[-1].detail.startswith("libssl.so.3 not found (searched /lib/aarch64-linux-gnu")
    failed_export = file_checks(ExportingEngine([], ok=False), "c1", tmp_path / "x.tar", p=ARM64,
                                entrypoint="/app", env={}, timeout=10)
    assert [(c.name, c.ok) for c in failed_export] == [("binary", False)]
    assert "No such container" in failed_export[0].detail
    missing = file_checks(ExportingEngine(members), "c1", tmp_path / "y.tar", p=ARM64, entrypoint="/nope", env={},
                          timeout=10)
    assert missing == [Check("binary", False, "/nope is not a file in the image")]


class ApiEngine:
    """The engine's archive endpoint over a file tree, with Docker's semantics: a HEAD cleans the path, follows
    the directories, not the last component, and gives a link's target fully resolved; a GET sends a tar."""

    def __init__(self, tree):
        self.tree, self.requests = tree, []

    def api_socket(self):
        return "/run/fake-docker.sock"

    def container_path_stat(self, container, path, *, timeout):
        import posixpath

        self.requests.append(("HEAD", path))
        clean = posixpath.normpath(path)
        entry = self.tree.lookup(clean)
        if entry is None:
            return None
        mode = {"dir": (1 << 31) | 0o755, "symlink": (1 << 27) | 0o777, "file": 0o644, "other": 1 << 25}[entry.kind]
        target = ""
        if entry.kind == "symlink":
            target = self.tree.walk(clean) or posixpath.normpath(posixpath.join(posixpath.dirname(clean),
                                                                                entry.target))
            if self.tree.kind(target) == "dangling":  # what the engine answers for a link loop
                raise EngineError(f"cannot stat {path} in container {container}: HTTP 500 {{\"message\":"
                                  f"\"evalSymlinksInScope: too many links in /var/lib/docker/merged{path}\"}}")
        return {"name": posixpath.basename(clean), "size": entry.size, "mode": mode, "linkTarget": target}

    def container_path_archive(self, container, path, *, timeout):
        import io
        import tarfile

        self.requests.append(("GET", path))
        data = self.tree.read(path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(path.rsplit("/", 1)[-1])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()


LIBRARY_SCENARIOS = {
    "good": image(),
    "missing": image(without=(f"{MA}/libgcc_s.so.1",)),
    "transitive": image({"/usr/local/bin/hello": program("libssl.so.3", "libc.so.6"),
                         f"{MA}/libssl.so.3": lib("libssl.so.3", "libcrypto.so.3", "libc.so.6")}),
    "origin through links": image({"/opt/app/bin/app": program("libapp.so.1", runpath="$ORIGIN/../lib"),
                                   "/opt/app/lib/libapp.so.1": lib("libapp.so.1")},
                                  {"/usr/local/bin/app": "/opt/app/bin/app", "/srv": "opt"}),
    "relative chain": image({"/usr/local/bin/hello": program("libfoo.so.1", "libc.so.6"),
                             "/opt/real/libfoo.so.1.2.3": lib("libfoo.so.1")},
                            {f"{MA}/libfoo.so.1": "libfoo.so.1.2",
                             f"{MA}/libfoo.so.1.2": "../../../opt/real/libfoo.so.1.2.3"}),
    "dangling and loop": image({"/usr/local/bin/hello": program("libfoo.so.1", "libbar.so.1")},
                               {f"{MA}/libfoo.so.1": "gone", f"{MA}/libbar.so.1": "libbar.so.2",
                                f"{MA}/libbar.so.2": "libbar.so.1"}),
    "other machine": image({"/usr/local/bin/hello": program("libz.so.1"), "/usr/lib/libz.so.1": make_elf(machine=62)}),
    "interpreter gone": image(without=(f"{MA}/ld-linux-aarch64.so.1",)),
    "cache": image({"/usr/local/bin/hello": program("libfoo.so.1"), "/usr/local/lib/libfoo.so.1": lib("libfoo.so.1"),
                    "/etc/ld.so.cache": make_ld_so_cache([("libfoo.so.1", "/usr/local/lib/libfoo.so.1")])}),
}


@pytest.mark.parametrize("scenario", sorted(LIBRARY_SCENARIOS))
def test_container_files_through_the_engine_api_agree_with_the_tree(scenario):
    """The same check over the engine's API (one stat or file per request) as over the whole tree."""
    from tasks.steps.smoke import ContainerFiles

    tree = LIBRARY_SCENARIOS[scenario]
    files = ContainerFiles.attach(ApiEngine(tree), "c1", timeout=10)
    assert files is not None
    assert libraries(files) == libraries(tree)


def test_container_files_ask_for_little(tmp_path):
    from tasks.steps.smoke import ContainerFiles, file_checks

    engine = ApiEngine(image({"/etc/ld.so.cache": make_ld_so_cache([]), "/usr/share/big": b"x" * 100}))
    checks = file_checks(engine, "c1", tmp_path / "unused.tar", p=ARM64, entrypoint="/usr/local/bin/app", env={},
                         timeout=10)
    assert [(c.name, c.ok) for c in checks] == [("ELF machine", True), ("glibc", True), ("libraries", True)]
    gets = [path for method, path in engine.requests if method == "GET"]
    assert gets == ["/usr/local/bin/hello", f"{MA}/libc.so.6", f"{MA}/libgcc_s.so.1"]  # libc once, for both checks
    assert not (tmp_path / "unused.tar").exists()  # no export
    heads = [path for method, path in engine.requests if method == "HEAD"]
    assert len(heads) == len(set(heads)) < 20  # every answer kept
    files = ContainerFiles(engine, "c1", timeout=10, max_read=50)
    with pytest.raises(ValueError, match="more than the 50"):
        files.read("/usr/share/big")


def test_the_engine_api_is_used_only_for_the_engine_the_cli_talks_to(tmp_path, monkeypatch):
    import socket

    from invoke import Context

    from tasks.engine.docker import Engine

    sock_path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    try:
        def found(**env):
            for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "config"))
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            return Engine(Context()).api.socket()

        assert found(DOCKER_HOST=f"unix://{sock_path}") == str(sock_path)
        assert found(DOCKER_HOST="tcp://10.0.0.1:2376") == ""  # a remote engine: docker export instead
        assert found(DOCKER_HOST="ssh://builder") == ""
        assert found(DOCKER_HOST=f"unix://{tmp_path / 'nothing.sock'}") == ""
        assert found(DOCKER_HOST=f"unix://{tmp_path}") == ""  # not a socket
        (tmp_path / "config").mkdir()
        (tmp_path / "config" / "config.json").write_text('{"currentContext": "remote"}')
        assert found() == "" and found(DOCKER_CONTEXT="other") == ""
        (tmp_path / "config" / "config.json").write_text('{"currentContext": "default"}')
        assert found(DOCKER_CONTEXT="remote") == ""
    finally:
        server.close()


def test_the_elf_abi_of_ppc64le_and_riscv64_is_what_debian_runs():
    from dataclasses import replace

    ppc, riscv = lookup("ppc64le"), lookup("riscv64")
    v2 = replace(elf(21), flags=2)
    assert failed(check_binary(ppc, v2, LIBC)) == [] and failed(check_binary(ppc, elf(21), LIBC)) == []  # unstated
    (abi,) = [c for c in check_binary(ppc, replace(elf(21), flags=1), LIBC) if c.name == "ELF ABI"]
    assert not abi.ok and "ELFv1" in abi.detail and "needs ELFv2" in abi.detail
    assert failed(check_binary(riscv, replace(elf(243), flags=0x5), LIBC)) == []  # RVC + double float
    (abi,) = [c for c in check_binary(riscv, replace(elf(243), flags=0x1), LIBC) if c.name == "ELF ABI"]
    assert not abi.ok and "lp64 (soft float)" in abi.detail
    assert "ELF ABI" not in [c.name for c in check_binary(lookup("arm64"), elf(183), LIBC)]
