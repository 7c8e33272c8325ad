"""`inv setup`: check (and with --fix, repair) everything builds, smoke tests and releases need.

One row per check: the Docker engine, buildx, the builder, the QEMU emulator of every foreign platform,
the base images' platforms, the registry and its credentials. Each failed row names the command that
fixes it; ``--fix`` runs the fixes it can (the steps of ``scripts/provision-local.sh``, re-enabling a
disabled emulator, creating a named builder) and checks again. Idempotent: a second ``--fix`` changes
nothing and says so.
"""

from __future__ import annotations

import io
import os
import shlex
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from invoke import Context, Exit, task

from .checks import parse_index
from .common import load_settings, say
from .emulation import BINFMT, host_platform_name, is_native, probe_handlers
from .platforms import Platform, PlatformError, lookup, parse_platforms
from .report import format_table
from .settings import SUITE_ROOT, Settings, SettingsError, flag_help

PROVISION = SUITE_ROOT / "scripts" / "provision-local.sh"
LOCAL_REGISTRY = "127.0.0.1:5000"
LOCAL_BASE = f"{LOCAL_REGISTRY}/crossdock/debian:bookworm"
SECRET_ENV = ("REGISTRY_USER", "REGISTRY_PASSWORD")


@dataclass(frozen=True)
class Row:
    check: str
    ok: bool
    found: str
    fix: str = ""  # the command that fixes it, for the person reading the table
    auto_fix: tuple[str, ...] = ()  # what --fix runs: provision steps, or "enable:<handler>", "builder:<name>"


def setup_table(rows: list[Row]) -> str:
    return format_table(("", "check", "found", "fix"),
                        [("✓" if r.ok else "✗", r.check, r.found, "" if r.ok else r.fix) for r in rows])


def _run(c: Context, argv: list[str], **kwargs):
    opts = dict(hide=True, warn=True, echo=False, in_stream=False, dry=False)
    opts.update(kwargs)
    return c.run(shlex.join(argv), **opts)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def check_engine(c: Context, settings: Settings) -> list[Row]:
    """buildx (client side), the engine, then the builder: each reported even when another fails."""
    rows = []
    buildx = _run(c, ["docker", "buildx", "version"])
    rows.append(Row("buildx plugin", True, buildx.stdout.strip().replace("github.com/docker/buildx ", ""))
                if buildx.ok else
                Row("buildx plugin", False, "missing", f"{PROVISION} buildx (or install docker-buildx)", ("buildx",)))
    version = _run(c, ["docker", "version", "--format", "{{.Client.Version}} {{.Server.Version}}"])
    if version.failed or len(version.stdout.split()) < 2:
        rows.insert(0, Row("Docker engine", False, f"cannot reach it: {_last_line(version.stderr)}",
                           f"{PROVISION} packages dockerd (or start dockerd / set DOCKER_HOST)",
                           ("packages", "dockerd")))
        return rows
    client, server = version.stdout.split()[:2]
    rows.insert(0, Row("Docker engine", True, f"client {client}, server {server}"))
    if not buildx.ok:
        return rows
    name = settings.builder or "(current)"
    inspect = _run(c, ["docker", "buildx", "inspect", "--bootstrap", *([settings.builder] if settings.builder else [])])
    if inspect.failed:
        rows.append(Row(f"builder {name}", False, _last_line(inspect.stderr), f"docker buildx create --name "
                        f"{settings.builder or 'NAME'}", (f"builder:{settings.builder}",) if settings.builder else ()))
        return rows
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in inspect.stdout.splitlines())
            if k.strip() in ("Driver", "Platforms")}
    rows.append(Row(f"builder {name}", True, f"driver {info.get('Driver', '?')}; platforms "
                                             f"{info.get('Platforms', '?')}"))
    return rows


def check_emulators(c: Context, platforms: tuple[Platform, ...]) -> list[Row]:
    host = host_platform_name()
    problems = {problem.platform.name: problem for problem in probe_handlers(platforms, host=host)}
    rows = []
    for p in platforms:
        if is_native(p, host):
            rows.append(Row(f"emulator {p.docker}", True, f"native on this {host} machine"))
            continue
        problem = problems.get(p.name)
        if problem:
            disabled = "disabled" in problem.problem
            auto = (f"enable:{p.qemu_handler}",) if disabled else ("packages", "binfmt")
            rows.append(Row(f"emulator {p.docker}", False, problem.problem, problem.fix, auto))
            continue
        text = (BINFMT / p.qemu_handler).read_text()
        interpreter = next((line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("interpreter ")),
                           "")
        # Debian registers .../<arch>-binfmt-P, which treats its first argument as argv[0]: ask the real binary.
        real = str(Path(interpreter).resolve()) if interpreter else ""
        version = _run(c, [real, "--version"]).stdout.splitlines()[:1] if real else []
        flags = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:")), "")
        rows.append(Row(f"emulator {p.docker}", True,
                        f"{p.qemu_handler} enabled, flags {flags}; {version[0] if version else interpreter}"))
    return rows


def image_platforms(c: Context, image: str) -> tuple[list[str] | None, str]:
    r = _run(c, ["docker", "buildx", "imagetools", "inspect", "--raw", image])
    if r.failed:
        return None, _last_line(r.stderr)
    entries = parse_index(r.stdout)
    if not entries:
        return [], "a single-platform image (no manifest list)"
    return [e.platform for e in entries], ""


def missing_platforms(offered: list[str], wanted: tuple[Platform, ...]) -> list[Platform]:
    """Platforms of ``wanted`` an image's index lacks (arm/v7 also matches a variant-less linux/arm)."""
    have = set()
    for name in offered:
        try:
            have.add(lookup(name).name)
        except PlatformError:
            continue
    return [p for p in wanted if p.name not in have]


def check_base_images(c: Context, settings: Settings, platforms: tuple[Platform, ...]) -> list[Row]:
    host = lookup(host_platform_name())
    rows = []
    for label, image, wanted in (("builder image", settings.builder_image, (host,)),
                                 ("runtime image", settings.runtime_image, platforms)):
        local = image == LOCAL_BASE
        fix_cmd = f"{PROVISION} base-images" if local else f"choose an image that has them (--{label.split()[0]}-image)"
        offered, error = image_platforms(c, image)
        if offered is None:
            rows.append(Row(f"{label} {image}", False, f"cannot read it: {error}", fix_cmd,
                            ("registry", "base-images") if local else ()))
            continue
        missing = missing_platforms(offered, wanted)
        if missing:
            names = ", ".join(p.docker for p in missing)
            if local:  # the local world's base image: add Debian architectures to it
                arches = " ".join(dict.fromkeys([*(lookup(o).debian_arch for o in offered),
                                                 *(p.debian_arch for p in missing)]))
                fix_cmd = f'CROSSDOCK_BASE_ARCHES="{arches}" {PROVISION} base-images'
            rows.append(Row(f"{label} {image}", False, f"has no {names} (it has {', '.join(offered) or 'none'})",
                            fix_cmd))
        else:
            rows.append(Row(f"{label} {image}", True, f"has {', '.join(p.docker for p in wanted)}"))
    return rows


def registry_url(registry: str) -> str:
    host = registry.split("/")[0]
    plain = host.startswith(("127.", "localhost")) or host == "[::1]"
    return f"{'http' if plain else 'https'}://{host}/v2/"


def check_registry(c: Context, settings: Settings, environ: dict[str, str]) -> list[Row]:
    if not settings.registry:
        return [Row("registry", True, "none configured (the image name is a full reference)")]
    url = registry_url(settings.registry)
    local = settings.registry == LOCAL_REGISTRY
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            answer = f"answers HTTP {resp.status}"
    except urllib.error.HTTPError as e:
        answer = f"answers HTTP {e.code}" + (" (login required)" if e.code == 401 else "")
    except OSError as e:
        return [Row(f"registry {settings.registry}", False, f"no answer at {url}: {e}",
                    f"{PROVISION} registry" if local else "start the registry or fix --registry",
                    ("registry",) if local else ())]
    rows = [Row(f"registry {settings.registry}", True, answer)]
    user, password = environ.get("REGISTRY_USER", ""), environ.get("REGISTRY_PASSWORD", "")
    if user or password:
        rows.append(check_login(c, settings.registry, user, password))
    return rows


def check_login(c: Context, registry: str, user: str, password: str) -> Row:
    """docker login with the password on stdin: never on argv, never echoed, never printed."""
    if not (user and password):
        return Row(f"login {registry}", False, "REGISTRY_USER and REGISTRY_PASSWORD must both be set",
                   "set both in .env or the environment")
    r = _run(c, ["docker", "login", "--username", user, "--password-stdin", registry],
             in_stream=io.StringIO(password), echo_stdin=False)
    answer = _last_line(r.stderr if r.failed else r.stdout).replace(password, "***")
    return Row(f"login {registry} as {user}", r.ok, answer, "check REGISTRY_USER / REGISTRY_PASSWORD")


def gather_rows(c: Context, settings: Settings, platforms: tuple[Platform, ...]) -> list[Row]:
    rows = check_engine(c, settings)
    engine_ok = all(r.ok for r in rows)
    rows += check_emulators(c, platforms)
    if engine_ok:
        rows += check_base_images(c, settings, platforms)
    else:
        rows.append(Row("base images", False, "not checked: the engine is not ready", "fix the rows above first",
                        ("registry", "base-images")))
    rows += check_registry(c, settings, dict(os.environ))
    return rows


def apply_fixes(c: Context, rows: list[Row]) -> list[str]:
    """Run what --fix can for the failed rows; the list says what was done."""
    done: list[str] = []
    steps: list[str] = []
    for row in rows:
        if row.ok:
            continue
        for action in row.auto_fix:
            if action.startswith("enable:"):
                handler = BINFMT / action.split(":", 1)[1]
                handler.write_text("1")
                done.append(f"enabled {handler}")
            elif action.startswith("builder:"):
                name = action.split(":", 1)[1]
                r = _run(c, ["docker", "buildx", "create", "--name", name])
                done.append(f"created builder {name}" if r.ok else f"could not create builder {name}: "
                            f"{_last_line(r.stderr)}")
            elif action not in steps:
                steps.append(action)
    if steps:
        order = ["packages", "binfmt", "buildx", "dockerd", "registry", "base-images", "venv"]
        steps.sort(key=order.index)
        say(f"fixing: {PROVISION} {' '.join(steps)}")
        r = c.run(shlex.join(["bash", str(PROVISION), *steps]), warn=True, in_stream=False)
        done.append(f"ran provision steps {' '.join(steps)}" + ("" if r.ok else f" (exit {r.exited})"))
    return done


@task(
    auto_shortflags=False,
    help=flag_help("platforms", "builder", "builder_image", "runtime_image", "registry",
                   fix="Repair what can be repaired here (provision steps, emulators, builder), then check again."),
)
def setup(c: Context, platforms=None, fix=False, builder=None, builder_image=None, runtime_image=None,
          registry=None):
    """Check the engine, buildx, builder, emulators, base images and registry for the platforms."""
    try:
        settings = load_settings(c, platforms=platforms, builder=builder, builder_image=builder_image,
                                 runtime_image=runtime_image, registry=registry)
        wanted = parse_platforms(settings.platforms)
    except (SettingsError, PlatformError) as e:
        raise Exit(f"crossdock: error: {e}", code=1) from None
    rows = gather_rows(c, settings, wanted)
    if fix:
        if all(r.ok for r in rows):
            print(setup_table(rows))
            print()
            say("--fix: nothing to fix, everything is in place (nothing was changed)")
            return
        done = apply_fixes(c, rows)
        for line in done:
            say(f"--fix: {line}")
        rows = gather_rows(c, settings, wanted)
    print(setup_table(rows))
    failed = [r for r in rows if not r.ok]
    if failed:
        print()
        raise Exit("crossdock: error: setup is incomplete:\n" + "\n".join(
            f"  {r.check}: {r.found}. Fix: {r.fix}" for r in failed), code=1)
    print()
    say(f"ready for {', '.join(p.docker for p in wanted)}")


def emulator_warning(platforms: tuple[Platform, ...]) -> list[str]:
    """For `inv build`: builds need no emulator, but the smoke tests will."""
    return [f"warning: {p} (the build itself does not need it; `inv smoke` will)" for p in probe_handlers(platforms)]


def base_image_problem(c: Context, settings: Settings, platforms: tuple[Platform, ...]) -> str:
    """For `inv build`: the runtime image lacks a requested platform (checked before any build)."""
    offered, _ = image_platforms(c, settings.runtime_image)
    if not offered:  # unreadable or single-platform: let the build report it
        return ""
    missing = missing_platforms(offered, platforms)
    if not missing:
        return ""
    return (f"the runtime image {settings.runtime_image} has no {', '.join(p.docker for p in missing)} "
            f"(it has {', '.join(offered)}): drop those platforms or choose another --runtime-image")

