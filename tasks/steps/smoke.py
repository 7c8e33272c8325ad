"""`inv smoke`: prove every platform of a manifest list is the right binary and actually runs (QEMU).

Gather (the image's index, what the build recorded, the emulators) -> check every platform in parallel
(metadata; from the image's files, read natively: ELF header and glibc, the shared libraries; a run under
QEMU, the service's health endpoint) -> table, JUnit, JSON.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..common import say
from ..core.checks import (
    Check,
    Expectations,
    FileEntry,
    FileTree,
    ImageFiles,
    PlatformSmoke,
    SmokeResult,
    check_binary,
    check_libraries,
    check_metadata,
    check_run,
    image_env,
    junit_xml,
    program_path,
)
from ..core.elf import ElfError, parse_elf
from ..core.errors import CrossdockError
from ..core.image import SPEC_LABEL, parse_checks
from ..core.platforms import Platform, lookup
from ..core.references import IndexEntry, repository_of
from ..core.report import BuildResult, format_table, human_seconds
from ..core.settings import Settings
from ..core.spec_checks import check_config, check_files, parse_probe, probe_args
from ..engine.containers import Containers
from ..engine.docker import Engine
from ..engine.emulation import host_platform_name, is_native, probe_handlers

if TYPE_CHECKING:
    import tarfile

MAX_FILE_READ = 1 << 30  # bytes of one file a check reads out of an image (an ELF binary or library)


def expectations_from_build(result: BuildResult) -> Expectations:
    """What a build in this run recorded (the release smoke-tests the index it just built)."""
    return expectations_from_report(result.to_json())


def expectations_from_report(report: dict) -> Expectations:
    return Expectations(version=report.get("version", ""), revision=report.get("revision", ""),
                        created=report.get("created", ""), source=report.get("source"),
                        package_version=report.get("package_version", ""))


def _http_ok(url: str, deadline: float, alive: Callable[[], bool]) -> tuple[bool, str]:
    import urllib.error
    import urllib.request

    last = "no answer"
    for _ in range(600):  # bounded by count and by the deadline
        if time.monotonic() > deadline:
            break
        if not alive():
            return False, "the container exited before answering"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return True, "HTTP 200"
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:  # e.g. 503 while the service warms up: keep asking
            last = f"HTTP {e.code}"
        except OSError as e:
            last = str(e)
        time.sleep(0.5)
    return False, f"no HTTP 200 before the timeout (last: {last})"


def smoke_platform(engine: Engine, *, repo: str, entry: IndexEntry, p: Platform, expect: Expectations,
                   command: tuple[str, ...], health_path: str, port: int, timeout: float,
                   emulated: bool, pattern: str = "{version}") -> PlatformSmoke:
    import tempfile
    import uuid

    t0 = time.monotonic()
    box = engine.containers
    ref = f"{repo}@{entry.digest}"
    checks: list[Check] = []

    def done() -> PlatformSmoke:
        return PlatformSmoke(platform=p, digest=entry.digest, checks=tuple(checks), seconds=time.monotonic() - t0)

    pull = box.pull(ref, p.docker, timeout=timeout)
    if not pull.ok:
        checks.append(Check("pull", False, pull.stderr.strip() or pull.stdout.strip()))
        return done()
    config = box.image_config(ref)
    checks += check_metadata(p, config, expect)
    spec = parse_checks(((config.get("Config") or {}).get("Labels") or {}).get(SPEC_LABEL, ""))
    if spec is not None:
        if int(spec.get("uid", -1)) == 0:  # the project said allow-root = true: the spec is the contract
            checks = [Check("non-root user", True, "root, as the image spec allows (allow-root)")
                      if c.name == "non-root user" else c for c in checks]
        annotations = manifest_annotations(engine, ref) if spec.get("annotations") else {}
        checks += check_config(spec, config.get("Config") or {}, annotations)
        declared = [int(x) for x in spec.get("ports") or []]
        port = port if port in declared or not declared else declared[0]  # the service listens where it says

    # the ELF checks read the main binary (the spec's first; the entrypoint may be a script)
    entrypoint = (spec.get("binaries") if spec else (config.get("Config") or {}).get("Entrypoint")) or [""]
    entrypoint = entrypoint[0]
    created = box.create(ref, p.docker)
    if not created.ok or not entrypoint:
        checks.append(Check("binary", False, created.stderr.strip() or "no entrypoint to inspect"))
    else:
        cid = created.stdout.strip()
        try:
            with tempfile.TemporaryDirectory(prefix="crossdock-smoke-") as tmp:
                checks += file_checks(box, cid, Path(tmp) / "rootfs.tar", p=p, entrypoint=entrypoint,
                                      env=image_env(config), timeout=timeout,
                                      workdir=(config.get("Config") or {}).get("WorkingDir") or "/")
        finally:
            box.remove(cid)

    if spec is not None:
        checks += probe_spec_files(box, ref=ref, p=p, spec=spec, timeout=timeout)

    name = f"crossdock-smoke-{uuid.uuid4().hex[:12]}"  # so a timed-out run can be removed, not left running
    try:
        r = box.run(ref, p.docker, command, name=name, timeout=timeout)
        if r.timed_out:
            checks.append(Check("run", False, f"`{shlex.join(command)}` did not finish within {timeout:.0f}s"))
        else:
            checks.append(check_run(p, exit_code=r.exited, output=r.stdout + r.stderr, expect=expect,
                                    command=shlex.join(command), emulated=emulated, pattern=pattern))
    finally:
        box.remove(name)

    if health_path and port:
        checks.append(check_service(box, ref=ref, p=p, health_path=health_path, port=port, timeout=timeout))
    return done()


def manifest_annotations(engine: Engine, ref: str) -> dict[str, str]:
    """The annotations of the platform's image manifest ({} when it cannot be read)."""
    raw = engine.manifest_raw(ref)
    try:
        data = json.loads(raw.stdout) if raw.ok else {}
    except ValueError:
        data = {}
    found = data.get("annotations") if isinstance(data, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def probe_spec_files(box: Containers, *, ref: str, p: Platform, spec: dict, timeout: float) -> list[Check]:
    """Every declared binary, asset and directory with its mode and owner, and a real write into each
    directory, as the image's user, in a container of the platform's image."""
    import uuid

    name = f"crossdock-probe-{uuid.uuid4().hex[:12]}"
    try:
        r = box.probe_files(ref, p.docker, probe_args(spec), name=name, timeout=timeout)
    finally:
        box.remove(name)
    if not r.ok:
        return [Check("files", False, f"the file probe failed: {r.error}")]
    stats, writable = parse_probe(r.stdout)
    return check_files(spec, stats, writable)


def image_files_from_tar(tar: tarfile.TarFile, *, max_read: int = MAX_FILE_READ) -> FileTree:
    """The file system in a ``docker export`` tar: every member's path, kind and link target now; a regular
    file's bytes only when a check reads them (``tar`` must stay open while the checks run). Hard links
    read as the file they link to; devices and FIFOs are neither files nor directories."""
    entries: dict[str, FileEntry] = {}
    members: dict[str, tarfile.TarInfo] = {}
    for m in tar:
        path = posixpath.normpath("/" + m.name)
        if m.isdir():
            entries[path] = FileEntry("dir")
        elif m.issym():
            entries[path] = FileEntry("symlink", m.linkname)
        elif m.isreg() or m.islnk():
            entries[path] = FileEntry("file", size=m.size)
            members[path] = m
        else:
            entries[path] = FileEntry("other")

    def read(path: str) -> bytes:
        member = members[path]
        if member.islnk():
            target = members.get(posixpath.normpath("/" + member.linkname))
            if target is None:
                raise FileNotFoundError(f"{path} is a hard link to {member.linkname}, which the image lacks")
            member = target
        if member.size > max_read:
            raise ValueError(f"{path} has {member.size} bytes, more than the {max_read} this check reads")
        f = tar.extractfile(member)
        if f is None:
            raise FileNotFoundError(path)
        return f.read()

    return FileTree(entries, read)


# Go's os.FileMode type bits, as the engine reports a path's mode.
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_OTHER = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)  # device, pipe, socket, char, irregular


class ContainerFiles(ImageFiles):
    """A created container's files through the engine's API, one path per request, every answer kept: the
    stat ``docker cp`` makes first (for a link, the target comes back resolved) and a regular file's bytes.
    Only what the checks ask for crosses the socket: a few stats and the ELF files the loader would open."""

    def __init__(self, box: Containers, container: str, *, timeout: float, max_read: int = MAX_FILE_READ):
        self.box, self.container, self.timeout, self.max_read = box, container, timeout, max_read
        self._entries: dict[str, FileEntry | None] = {}
        self._recent: dict[str, bytes] = {}  # the last few files read (libc: by the glibc and libraries checks)

    @classmethod
    def attach(cls, box: Containers, container: str, *, timeout: float) -> ContainerFiles | None:
        """None when the engine's API cannot be reached from here (then the files come from `docker export`)."""
        if not box.api_socket():
            return None
        files = cls(box, container, timeout=timeout)
        try:
            return files if files.lookup("/") is not None else None
        except CrossdockError:
            return None

    def lookup(self, path: str) -> FileEntry | None:
        if path not in self._entries:
            asked = path
            if ".." in path.split("/"):  # the engine cleans '..' away before following links; the kernel after
                parent = self.realpath(posixpath.dirname(path))
                if parent is None:
                    self._entries[path] = None
                    return None
                asked = posixpath.join(parent, posixpath.basename(path))
            try:
                stat = self.box.container_path_stat(self.container, asked, timeout=self.timeout)
            except CrossdockError as e:
                if "too many links" not in str(e):
                    raise
                stat = {"mode": GO_MODE_SYMLINK, "linkTarget": asked}  # a link loop: the engine cannot follow it
            if stat is None:
                self._entries[path] = None
            else:
                mode = int(stat.get("mode", 0))
                kind = ("dir" if mode & GO_MODE_DIR else "symlink" if mode & GO_MODE_SYMLINK else
                        "other" if mode & GO_MODE_OTHER else "file")
                self._entries[path] = FileEntry(kind, stat.get("linkTarget", "") if kind == "symlink" else "",
                                                int(stat.get("size", 0)))
        return self._entries[path]

    def read_file(self, path: str) -> bytes:
        import io
        import tarfile

        entry = self.lookup(path)
        if entry is None or entry.kind != "file":
            raise FileNotFoundError(path)
        if entry.size > self.max_read:
            raise ValueError(f"{path} has {entry.size} bytes, more than the {self.max_read} this check reads")
        if path not in self._recent:
            data = self.box.container_path_archive(self.container, path, timeout=self.timeout)
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                member = tar.next()
                f = tar.extractfile(member) if member is not None and member.isreg() else None
                if f is None:
                    raise FileNotFoundError(f"{path}: the engine sent no regular file")
                self._recent[path] = f.read()
            while len(self._recent) > 4:
                del self._recent[next(iter(self._recent))]
        return self._recent[path]


def file_checks(box: Containers, cid: str, tar_path: Path, *, p: Platform, entrypoint: str, env: dict[str, str],
                timeout: float, workdir: str = "/") -> list[Check]:
    """The binary and libraries checks, from the files of a created container, read natively (nothing runs):
    through the engine's API, one path at a time, when the engine is local; otherwise from ``docker export``
    (the whole file system as a tar at ``tar_path``, of which only the ELF files the loader needs are read)."""
    import tarfile

    files = ContainerFiles.attach(box, cid, timeout=timeout)
    if files is not None:
        return _binary_and_libraries(files, p=p, entrypoint=entrypoint, env=env, workdir=workdir)
    exported = box.export(cid, tar_path, timeout=timeout)
    if not exported.ok:
        return [Check("binary", False, f"cannot export the image's files: {exported.error}")]
    try:
        tar = tarfile.open(tar_path)
    except (tarfile.TarError, OSError) as e:
        return [Check("binary", False, f"cannot read the image's exported files: {e}")]
    with tar:
        return _binary_and_libraries(image_files_from_tar(tar), p=p, entrypoint=entrypoint, env=env, workdir=workdir)


def _binary_and_libraries(files: ImageFiles, *, p: Platform, entrypoint: str, env: dict[str, str],
                          workdir: str = "/") -> list[Check]:
    try:
        path = program_path(files, entrypoint, env, workdir)
        if not path or not files.is_file(path):
            return [Check("binary", False, f"{entrypoint} is not a file in the image")]
        data = files.read(path)
    except (CrossdockError, OSError, ValueError) as e:
        return [Check("binary", False, f"cannot read {entrypoint} in the image: {e}")]
    try:
        binary = parse_elf(data)
    except ElfError as e:
        return [Check("ELF machine", False, f"{entrypoint}: {e}")]
    checks: list[Check] = []
    libc_path = ""
    try:
        libc_path = next((lp for lp in (f"/usr/lib/{p.multiarch}/libc.so.6", f"/lib/{p.multiarch}/libc.so.6")
                          if files.is_file(lp)), "")
        checks += check_binary(p, binary, parse_elf(files.read(libc_path)) if libc_path else None)
    except (CrossdockError, OSError, ValueError) as e:
        checks += [c for c in check_binary(p, binary, None) if c.name != "glibc"]
        checks.append(Check("glibc", False, f"{libc_path or 'libc.so.6'}: {e}"))
    search = [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
    try:
        checks.append(check_libraries(p, binary, files, binary_path=path, ld_library_path=search))
    except Exception as e:  # the engine failing mid-way, or our own bug: it must not hide the other checks
        checks.append(Check("libraries", False, f"{type(e).__name__}: {e}"))
    return checks


def check_service(box: Containers, *, ref: str, p: Platform, health_path: str, port: int, timeout: float) -> Check:
    started = box.start_service(ref, p.docker, port)
    if not started.ok:
        return Check("service", False, f"cannot start the service: {started.stderr.strip()}")
    cid = started.stdout.strip()
    try:
        host_port = box.host_port(cid, port)
        if not host_port:
            return Check("service", False, f"port {port} is not published")
        ok, detail = _http_ok(f"http://127.0.0.1:{host_port}{health_path}", time.monotonic() + timeout,
                              lambda: box.running(cid))
        if not ok:
            detail += f"; container log: {box.logs(cid)[-500:]}"
        return Check("service", ok, f"GET {health_path} on port {port}: {detail}")
    finally:
        box.remove(cid)


def step_timeout(budget: float, *, emulated: bool) -> float:
    """Emulated platforms get the whole budget per step; native ones a quarter (at least 30 s)."""
    return budget if emulated else max(30.0, budget / 4)


def smoke_table(results: list[PlatformSmoke]) -> str:
    rows = [(r.label, "ok" if r.ok else "FAILED", f"{sum(c.ok for c in r.checks)}/{len(r.checks)}",
             ", ".join(c.name for c in r.failures) or "-", "yes" if r.attestation else "none",
             human_seconds(r.seconds)) for r in results]
    return format_table(("platform", "result", "checks", "failed", "attestation", "time"), rows)


class SmokeError(CrossdockError):
    """The smoke test cannot start: no image, not a manifest list, a missing platform or emulator."""


def last_build(out_dir: Path) -> tuple[str, Expectations, Path | None]:
    """The manifest list the last `inv build` made (by digest), what it recorded, and its project."""
    report_path = out_dir / "build-report.json"
    if not report_path.is_file():
        raise SmokeError(f"no --image given and no build report at {report_path}: run `inv build` first or "
                         f"pass the image (inv smoke --image=REGISTRY/REPO:TAG)")
    try:
        report = json.loads(report_path.read_text())
        digest = report["manifest"]["digest"] if report.get("ok") else ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SmokeError(f"cannot read the build report {report_path} ({type(e).__name__}: {e}): run `inv build` "
                         f"again or pass --image") from None
    if not digest:
        raise SmokeError(f"the last build ({report_path}) did not produce a manifest list")
    project = Path(report["project"]) if isinstance(report.get("project"), str) and report["project"] else None
    return (f"{report['manifest']['reference']}@{report['manifest']['digest']}", expectations_from_report(report),
            project)


def run_smoke(engine: Engine, settings: Settings, *, image: str, expect: Expectations,
              platforms: tuple[Platform, ...] | None = None) -> SmokeResult:
    """Smoke-test every (or every requested) platform of `image`; writes the JUnit and JSON reports."""
    engine.info()
    entries, attested, error = engine.index_with_attestations(image)
    if entries is None:
        raise SmokeError(f"cannot read image {image}: {error}; check the reference and that the registry answers")
    if not entries:
        raise SmokeError(f"{image} is a single-platform image, not a manifest list: build it with `inv build`")
    table = {lookup(e.platform).name: (e, lookup(e.platform)) for e in entries}
    wanted = platforms or tuple(p for _, p in table.values())
    missing = [p.docker for p in wanted if p.name not in table]
    if missing:
        raise SmokeError(f"{image} has no {', '.join(missing)} (it has {', '.join(e.platform for e in entries)})")
    problems = probe_handlers(wanted)
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise SmokeError(f"cannot run these platforms under QEMU:\n{lines}")
    host = host_platform_name()
    repo = repository_of(image)
    say(f"smoke-testing {image}: {', '.join(p.docker for p in wanted)}")
    with ThreadPoolExecutor(max_workers=settings.jobs or len(wanted)) as pool:
        futures = [pool.submit(smoke_platform, engine, repo=repo, entry=table[p.name][0], p=p, expect=expect,
                               command=settings.smoke_command, pattern=settings.smoke_expect,
                               health_path=settings.health_path, port=settings.port,
                               timeout=step_timeout(settings.smoke_timeout, emulated=not is_native(p, host)),
                               emulated=not is_native(p, host)) for p in wanted]
        results = []
        for p, f in zip(wanted, futures, strict=True):
            try:
                r = f.result()
            except Exception as e:  # our own crash still names the platform
                r = PlatformSmoke(platform=p, digest=table[p.name][0].digest,
                                  checks=(Check("smoke", False, f"{type(e).__name__}: {e}"),))
            say(f"{r.label}: {'ok' if r.ok else 'FAILED'} ({human_seconds(r.seconds)})")
            results.append(r)
    results = [replace(r, attestation=attested.get(r.digest, "")) for r in results]
    result = SmokeResult(image=image, platforms=tuple(results))
    print()
    print(smoke_table(results))
    bare = result.unattested
    say(f"attestations: {len(results) - len(bare)}/{len(results)} platform(s) carry one"
        + (f"; none for {', '.join(r.label for r in bare)}" if bare else ""))
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    junit_path = settings.out_dir / "smoke-junit.xml"
    junit_path.write_text(junit_xml(results, image=image))
    (settings.out_dir / "smoke-report.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    print()
    say(f"JUnit report: {junit_path}")
    return result
