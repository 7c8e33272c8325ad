"""`inv smoke`: prove every platform of a manifest list is the right binary and actually runs (QEMU).

Gather (the image's index, what the build recorded, the emulators) -> check every platform in parallel
(metadata, ELF header and glibc, a run under QEMU, the service's health endpoint) -> table, JUnit, JSON.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from invoke import Context

from .common import crossdock_task, load_settings, say
from .core.checks import (
    Check,
    Expectations,
    PlatformSmoke,
    SmokeResult,
    check_binary,
    check_metadata,
    check_run,
    junit_xml,
)
from .core.elf import ElfError, parse_elf
from .core.errors import CrossdockError
from .core.platforms import Platform, lookup
from .core.references import IndexEntry, repository_of
from .core.report import BuildResult, format_table, human_seconds
from .core.settings import HELP, Settings, flag_help, image_reference, parse_flag, platform_list
from .engine.docker import Engine
from .engine.emulation import host_platform_name, is_native, probe_handlers


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
    ref = f"{repo}@{entry.digest}"
    checks: list[Check] = []

    def done() -> PlatformSmoke:
        return PlatformSmoke(platform=p, digest=entry.digest, checks=tuple(checks), seconds=time.monotonic() - t0)

    pull = engine.pull(ref, p.docker, timeout=timeout)
    if not pull.ok:
        checks.append(Check("pull", False, pull.stderr.strip() or pull.stdout.strip()))
        return done()
    config = engine.image_config(ref)
    checks += check_metadata(p, config, expect)

    entrypoint = ((config.get("Config") or {}).get("Entrypoint") or [""])[0]
    created = engine.create(ref, p.docker)
    if not created.ok or not entrypoint:
        checks.append(Check("binary", False, created.stderr.strip() or "no entrypoint to inspect"))
    else:
        cid = created.stdout.strip()
        try:
            with tempfile.TemporaryDirectory(prefix="crossdock-smoke-") as tmp:
                binary = engine.copy_out(cid, entrypoint, Path(tmp) / "binary")
                libc = None
                for path in (f"/usr/lib/{p.multiarch}/libc.so.6", f"/lib/{p.multiarch}/libc.so.6"):
                    libc = engine.copy_out(cid, path, Path(tmp) / "libc.so.6")
                    if libc:
                        break
                if binary is None:
                    checks.append(Check("binary", False, f"cannot copy {entrypoint} out of the image"))
                else:
                    try:
                        checks += check_binary(p, parse_elf(binary), parse_elf(libc) if libc else None)
                    except ElfError as e:
                        checks.append(Check("ELF machine", False, f"{entrypoint}: {e}"))
        finally:
            engine.remove(cid)

    name = f"crossdock-smoke-{uuid.uuid4().hex[:12]}"  # so a timed-out run can be removed, not left running
    try:
        r = engine.run(ref, p.docker, command, name=name, timeout=timeout)
        if r.timed_out:
            checks.append(Check("run", False, f"`{shlex.join(command)}` did not finish within {timeout:.0f}s"))
        else:
            checks.append(check_run(p, exit_code=r.exited, output=r.stdout + r.stderr, expect=expect,
                                    command=shlex.join(command), emulated=emulated, pattern=pattern))
    finally:
        engine.remove(name)

    if health_path and port:
        checks.append(check_service(engine, ref=ref, p=p, health_path=health_path, port=port, timeout=timeout))
    return done()


def check_service(engine: Engine, *, ref: str, p: Platform, health_path: str, port: int, timeout: float) -> Check:
    started = engine.start_service(ref, p.docker, port)
    if not started.ok:
        return Check("service", False, f"cannot start the service: {started.stderr.strip()}")
    cid = started.stdout.strip()
    try:
        host_port = engine.host_port(cid, port)
        if not host_port:
            return Check("service", False, f"port {port} is not published")
        ok, detail = _http_ok(f"http://127.0.0.1:{host_port}{health_path}", time.monotonic() + timeout,
                              lambda: engine.running(cid))
        if not ok:
            detail += f"; container log: {engine.logs(cid)[-500:]}"
        return Check("service", ok, f"GET {health_path} on port {port}: {detail}")
    finally:
        engine.remove(cid)


def step_timeout(budget: float, *, emulated: bool) -> float:
    """Emulated platforms get the whole budget per step; native ones a quarter (at least 30 s)."""
    return budget if emulated else max(30.0, budget / 4)


def smoke_table(results: list[PlatformSmoke]) -> str:
    rows = [(r.label, "ok" if r.ok else "FAILED", f"{sum(c.ok for c in r.checks)}/{len(r.checks)}",
             ", ".join(c.name for c in r.failures) or "-", human_seconds(r.seconds)) for r in results]
    return format_table(("platform", "result", "checks", "failed", "time"), rows)


@crossdock_task(
    help={
        **flag_help("health_path", "port", "jobs", "out_dir"),
        "expect": HELP["smoke_expect"],
        "image": "Manifest list to test (registry/repo:tag or @digest). Default: what the last `inv build` made.",
        "platforms": "Platforms to test (default: every platform of the manifest list).",
        "command": HELP["smoke_command"],
        "timeout": HELP["smoke_timeout"],
    },
)
def smoke(c: Context, image=None, platforms=None, command=None, expect=None, health_path=None, port=None,
          timeout=None, jobs=None, out_dir=None):
    """Check every platform of an image: metadata, ELF binary and glibc, a run under QEMU, the service."""
    settings = load_settings(c, smoke_command=command, smoke_expect=expect, health_path=health_path, port=port,
                             smoke_timeout=timeout, jobs=jobs, out_dir=out_dir)
    wanted = parse_flag("--platforms", platforms, platform_list) if platforms is not None else None
    recorded = Expectations()
    if image is None:
        image, recorded, project = last_build(settings.out_dir)
        if project and project != settings.project:  # the built project's own metadata (its smoke settings)
            settings = load_settings(c, project=str(project), smoke_command=command, smoke_expect=expect,
                                     health_path=health_path, port=port, smoke_timeout=timeout, jobs=jobs,
                                     out_dir=out_dir)
    else:
        parse_flag("--image", image, image_reference)
    result = run_smoke(Engine(c), settings, image=image, expect=recorded, platforms=wanted)
    if not result.ok:
        details = "\n".join(f"  {r.label}: {c.name}: {c.detail}" for r in result.failed for c in r.failures)
        raise SmokeError(f"smoke test failed for {', '.join(r.label for r in result.failed)}:\n{details}")


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
    entries, error = engine.image_index(image)
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
    result = SmokeResult(image=image, platforms=tuple(results))
    print()
    print(smoke_table(results))
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    junit_path = settings.out_dir / "smoke-junit.xml"
    junit_path.write_text(junit_xml(results, image=image))
    (settings.out_dir / "smoke-report.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    print()
    say(f"JUnit report: {junit_path}")
    return result
