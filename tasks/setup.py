"""`inv setup`: check (and with --fix, repair) everything builds, smoke tests and releases need.

One row per check: the Docker engine, buildx, the builder, the QEMU emulator of every foreign platform,
the base images' platforms, the registry and its credentials. Each failed row names the command that
fixes it; ``--fix`` runs the fixes it can (the steps of ``scripts/provision-local.sh``, re-enabling a
disabled emulator, creating a named builder) and checks again. Idempotent: a second ``--fix`` changes
nothing and says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from invoke import Context

from .common import say, settings_task
from .core.build_plan import toolchain_problems
from .core.buildx import flavour_of
from .core.capabilities import Capability, capabilities
from .core.errors import CrossdockError
from .core.platforms import Platform, lookup
from .core.report import format_table
from .core.settings import SUITE_ROOT, Settings
from .engine.docker import Engine, EngineInfo, inspect_field, last_line
from .engine.emulation import BINFMT, handler_field, host_platform_name, is_native, probe_handlers
from .engine.preflight import image_platforms, missing_platforms
from .engine.registry import Client, RegistryError, Repo, registry_ca
from .engine.secrets import PASSWORD_ENV, USER_ENV, CredentialsError, credentials, require_pair

PROVISION = SUITE_ROOT / "scripts" / "provision-local.sh"
# The local world's registry, as scripts/provision-local.sh starts it (its CROSSDOCK_LOCAL_REGISTRY).
LOCAL_REGISTRY = os.environ.get("CROSSDOCK_LOCAL_REGISTRY") or "127.0.0.1:5000"
# Its base images, one tag per Debian release (crossdock/debian:trixie, :bookworm), and where it records
# an architecture the Debian mirror did not serve (<state>/rootfs/<release>/<arch>/unavailable).
LOCAL_BASE = f"{LOCAL_REGISTRY}/crossdock/debian:"
LOCAL_STATE = Path(os.environ.get("CROSSDOCK_STATE") or "/var/lib/crossdock")


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


def check_engine(engine: Engine, settings: Settings) -> list[Row]:
    """buildx (client side), the engine, then the builder: each reported even when another fails."""
    rows = []
    buildx = engine.buildx_version()
    rows.append(Row("buildx plugin", True, buildx.stdout.strip().replace("github.com/docker/buildx ", ""))
                if buildx.ok else
                Row("buildx plugin", False, "missing", f"{PROVISION} buildx (or install docker-buildx)", ("buildx",)))
    version = engine.versions()
    if not version.ok or len(version.stdout.split()) < 2:
        rows.insert(0, Row("Docker engine", False, f"cannot reach it: {last_line(version.stderr)}",
                           f"{PROVISION} packages dockerd (or start dockerd / set DOCKER_HOST)",
                           ("packages", "dockerd")))
        return rows
    client, server = version.stdout.split()[:2]
    rows.insert(0, Row("Docker engine", True, f"client {client}, server {server}"))
    if not buildx.ok:
        return rows
    name = settings.builder or "(current)"
    inspect = engine.bootstrap_builder()
    if not inspect.ok:
        rows.append(Row(f"builder {name}", False, last_line(inspect.stderr), f"docker buildx create --name "
                        f"{settings.builder or 'NAME'}", (f"builder:{settings.builder}",) if settings.builder else ()))
        return rows
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in inspect.stdout.splitlines())
            if k.strip() in ("Driver", "Platforms", "BuildKit version", "BuildKit")}
    rows.append(Row(f"builder {name}", True, f"driver {info.get('Driver', '?')}; platforms "
                                             f"{info.get('Platforms', '?')}"))
    return rows


def check_emulators(engine: Engine, platforms: tuple[Platform, ...]) -> list[Row]:
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
        interpreter = handler_field(text, "interpreter")
        # Debian registers .../<arch>-binfmt-P, which treats its first argument as argv[0]: ask the real binary.
        real = str(Path(interpreter).resolve()) if interpreter else ""
        version = engine.probe([real, "--version"]).stdout.splitlines()[:1] if real else []
        flags = handler_field(text, "flags")
        rows.append(Row(f"emulator {p.docker}", True,
                        f"{p.qemu_handler} enabled, flags {flags}; {version[0] if version else interpreter}"))
    return rows






def check_toolchains(settings: Settings) -> list[Row]:
    """One row per requested platform: whether the builder image can compile for it (build_plan's rule)."""
    problems = toolchain_problems(settings)
    flavour = flavour_of(settings.builder_image)
    return [Row(f"toolchain {p.docker}", False, problems[p], "another --builder-image, or drop the platform")
            if p in problems else Row(f"toolchain {p.docker}", True, f"{flavour} {p.rust_triple}")
            for p in settings.platforms]


def check_private_sources(settings: Settings) -> list[Row]:
    """One row per private source the project fetches from: whether its credential is here (never its value)."""
    from .engine.secrets import cargo_tokens
    from .steps.private import probe_private_sources, requires_auth

    sources = probe_private_sources(settings.project)
    tokens = cargo_tokens()
    rows = []
    for r in sources.used_registries:
        have, needed = bool(tokens.get(r.token_env)), requires_auth(r)
        found = (f"{r.index}: {r.token_env} is set" if have else
                 f"{r.index} requires a token: {r.token_env} is not set" if needed else
                 f"{r.index}: no token needed")
        rows.append(Row(f"private registry {r.name}", have or not needed, found,
                        f"set {r.token_env} in the environment or .env"))
    if sources.ssh_git:
        hosts = sorted({g.host for g in sources.ssh_git})
        agent = bool(os.environ.get("SSH_AUTH_SOCK"))
        known = settings.ssh_known_hosts.read_text() if settings.ssh_known_hosts.is_file() else ""
        unknown = [h for h in hosts if h not in known]
        ok = agent and not unknown
        found = ("SSH agent forwarded; " if agent else "no SSH agent (SSH_AUTH_SOCK unset); ") + (
            f"{', '.join(unknown)} not in {settings.ssh_known_hosts}" if unknown else
            f"known hosts in {settings.ssh_known_hosts}")
        rows.append(Row(f"git over SSH {', '.join(hosts)}", ok, found,
                        "eval $(ssh-agent) && ssh-add KEY; ssh-keyscan HOST >> the known hosts file"))
    if sources.https_git:
        from .core.private_sources import git_credential_entries
        from .engine.secrets import git_credentials

        stored = {host for host, _ in git_credential_entries(git_credentials())}
        for host in sorted({g.host for g in sources.https_git}):
            have = any(s == host or s.startswith(f"{host}:") for s in stored)
            rows.append(Row(f"git over HTTPS {host}", True, "a credential in CROSSDOCK_GIT_CREDENTIALS" if have else
                            "no credential (fine for a public repository; a private one needs a line "
                            "https://USER:TOKEN@host in CROSSDOCK_GIT_CREDENTIALS)"))
    return rows


def local_base_fix(image: str, offered: list[str], missing: list[Platform]) -> str:
    """How to add architectures to the local world's base image, or why the mirror cannot give them."""
    release = image.removeprefix(LOCAL_BASE).split("@")[0]
    unserved = [p for p in missing if (LOCAL_STATE / "rootfs" / release / p.debian_arch / "unavailable").exists()]
    if unserved:
        files = ", ".join(str(LOCAL_STATE / "rootfs" / release / p.debian_arch / "unavailable") for p in unserved)
        return (f"the Debian mirror did not serve {release}'s packages for "
                f"{', '.join(p.debian_arch for p in unserved)} ({files} lists them); provisioning retries a day "
                f"later, or now after removing those files: {PROVISION} base-images")
    arches = " ".join(dict.fromkeys([*(lookup(o).debian_arch for o in offered), *(p.debian_arch for p in missing)]))
    return f'CROSSDOCK_BASE_RELEASES={release} CROSSDOCK_BASE_ARCHES="{arches}" {PROVISION} base-images'


def check_base_images(engine: Engine, settings: Settings, platforms: tuple[Platform, ...]) -> list[Row]:
    host = lookup(host_platform_name())
    rows = []
    for label, image, wanted in (("builder image", settings.builder_image, (host,)),
                                 ("runtime image", settings.runtime_image, platforms)):
        local = image.startswith(LOCAL_BASE)
        fix_cmd = f"{PROVISION} base-images" if local else f"choose an image that has them (--{label.split()[0]}-image)"
        offered, error = image_platforms(engine, image)
        if offered is None:
            rows.append(Row(f"{label} {image}", False, f"cannot read it: {error}", fix_cmd,
                            ("registry", "base-images") if local else ()))
            continue
        missing = missing_platforms(offered, wanted)
        if missing:
            names = ", ".join(p.docker for p in missing)
            if local:  # the local world's base image: add Debian architectures to it
                fix_cmd = local_base_fix(image, offered, missing)
            rows.append(Row(f"{label} {image}", False, f"has no {names} (it has {', '.join(offered) or 'none'})",
                            fix_cmd))
        else:
            rows.append(Row(f"{label} {image}", True, f"has {', '.join(p.docker for p in wanted)}"))
    return rows


TLS_FIX = ("put its CA certificate in /etc/docker/certs.d/{host}/ca.crt (the engine reads it there without a "
           "restart, and crossdock hands it to buildx), or in the system store (Debian: "
           "/usr/local/share/ca-certificates/ + update-ca-certificates)")


def check_buildx_trusts(engine: Engine, registry: str, host: str) -> Row:
    """buildx (imagetools, client side) verifies TLS with the system's trust store and the certs.d CAs
    crossdock hands it (tasks.engine.docker.registry_ca_env)."""
    r = engine.manifest_raw_via_buildx(f"{registry}/crossdock-setup-probe:none")
    text = r.stderr + r.stdout
    if "x509" in text or "certificate" in text:
        return Row(f"TLS {registry} for buildx", False, last_line(text), TLS_FIX.format(host=host))
    certs_d = registry_ca(host)
    return Row(f"TLS {registry} for buildx", True, "certificate verified" + (
        f" with {certs_d}" if certs_d else " by the system store"))


def check_registry(engine: Engine, settings: Settings) -> list[Row]:
    """The push registry answers `GET /v2/` (200, or 401: login required); configured credentials are
    accepted. Checked over HTTP: nothing is stored anywhere (no `docker login` here)."""
    if not settings.registry:
        return [Row("registry", True, "none configured (the image name is a full reference)")]
    root = Repo.parse(f"{settings.registry}/x").root
    local = settings.registry == LOCAL_REGISTRY
    fix = f"{PROVISION} registry" if local else "start the registry or fix --registry"
    host = Repo.parse(f"{settings.registry}/x").host
    try:
        status, _, _ = Client().request(root)
    except RegistryError as e:
        if "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e):
            return [Row(f"registry {settings.registry}", False, f"its TLS certificate is not trusted ({e})",
                        TLS_FIX.format(host=host))]
        return [Row(f"registry {settings.registry}", False, f"no answer at {root}: {e}", fix,
                    ("registry",) if local else ())]
    if status not in (200, 401):
        return [Row(f"registry {settings.registry}", False, f"{root} answers HTTP {status}", fix)]
    rows = [Row(f"registry {settings.registry}", True,
                f"answers HTTP {status}" + (" (login required)" if status == 401 else "")
                + (f" over TLS (CA {registry_ca(host)})" if registry_ca(host) else
                   " over TLS" if root.startswith("https") else ""))]
    if root.startswith("https"):
        rows.append(check_buildx_trusts(engine, settings.registry, host))
    user, password = credentials()
    try:
        if require_pair(user, password):
            ok, answer = Client(user, password).check_login(root)
            rows.append(Row(f"login {settings.registry} as {user}", ok, answer.replace(password, "***"),
                            f"check {USER_ENV} / {PASSWORD_ENV}"))
    except CredentialsError as e:
        rows.append(Row(f"login {settings.registry}", False, str(e), "set both in .env or the environment"))
    except RegistryError as e:
        rows.append(Row(f"login {settings.registry} as {user}", False, str(e).replace(password, "***"),
                        f"check {USER_ENV} / {PASSWORD_ENV}"))
    return rows


def engine_capabilities(engine: Engine) -> list[Capability]:
    """What the engine and builder can do (`docker info`, `docker buildx inspect --bootstrap`)."""
    inspect = engine.bootstrap_builder()
    docker_info = engine.engine_facts()
    info = EngineInfo(server_version=str(docker_info.get("ServerVersion", "")), builder=engine.builder,
                      driver=inspect_field(inspect.stdout, "Driver"),
                      buildkit=inspect_field(inspect.stdout, "BuildKit version", "BuildKit"))
    facts = engine.facts(info, docker_info)
    say(f"engine {facts.engine_version or '?'}, BuildKit {facts.buildkit_version or '?'}, builder driver "
        f"{facts.driver or '?'}, {facts.image_store} image store")
    return capabilities(facts)


def capability_table(rows: list[Capability]) -> str:
    return format_table(("", "capability", "found", "to get it"),
                        [("✓" if r.available else "-", r.name, r.detail, r.fix) for r in rows])


def gather_rows(engine: Engine, settings: Settings, platforms: tuple[Platform, ...]) -> list[Row]:
    rows = check_engine(engine, settings)
    engine_ok = all(r.ok for r in rows)
    rows += check_emulators(engine, platforms)
    rows += check_toolchains(settings)
    if engine_ok:
        rows += check_base_images(engine, settings, platforms)
    else:
        rows.append(Row("base images", False, "not checked: the engine is not ready", "fix the rows above first",
                        ("registry", "base-images")))
    rows += check_registry(engine, settings)
    rows += check_private_sources(settings)
    if settings.sign_key:
        rows.append(check_cosign(engine))
    return rows


def check_cosign(engine: Engine) -> Row:
    """Releases sign with cosign when a signing key is configured."""
    import shutil

    if shutil.which("cosign") is None:
        return Row("cosign (sign_key is set)", False, "not on PATH", f"{PROVISION} cosign", ("cosign",))
    version = engine.probe(["cosign", "version"])
    line = next((x.split(":", 1)[1].strip() for x in version.stdout.splitlines() if x.startswith("GitVersion")), "")
    found = f"cosign {line or 'present'} (signs offline: no transparency log)" if version.ok else \
        last_line(version.stderr)
    return Row("cosign (sign_key is set)", version.ok, found, f"{PROVISION} cosign", ("cosign",))


def apply_fixes(engine: Engine, rows: list[Row]) -> list[str]:
    """Run what --fix can for the failed rows; the list says what was done."""
    done: list[str] = []
    steps: list[str] = []
    for row in rows:
        if row.ok:
            continue
        for action in row.auto_fix:
            if action.startswith("enable:"):
                handler = BINFMT / action.split(":", 1)[1]
                try:
                    handler.write_text("1")
                    done.append(f"enabled {handler}")
                except OSError as e:
                    done.append(f"could not enable {handler} ({e.strerror}): run as root")
            elif action.startswith("builder:"):
                name = action.split(":", 1)[1]
                r = engine.create_builder(name)
                done.append(f"created builder {name}" if r.ok else f"could not create builder {name}: {r.error}")
            elif action not in steps:
                steps.append(action)
    if steps:
        order = ["packages", "binfmt", "buildx", "cosign", "dockerd", "registry", "base-images", "venv"]
        steps.sort(key=order.index)
        say(f"fixing: {PROVISION} {' '.join(steps)}")
        r = engine.act(["bash", str(PROVISION), *steps], hide=False)
        done.append(f"ran provision steps {' '.join(steps)}" + ("" if r.ok else f" (exit {r.exited})"))
    return done


@settings_task("platforms", "project", "builder", "builder_image", "runtime_image", "registry", "ssh_known_hosts",
               flags={
    "fix": (False, "Repair what can be repaired here (provision steps, emulators, builder), then check again.")})
def setup(c: Context, settings: Settings, *, fix: bool = False) -> None:
    """Check the engine, buildx, builder, emulators, base images and registry for the platforms."""
    wanted = settings.platforms
    engine = Engine(c, builder=settings.builder)
    rows = gather_rows(engine, settings, wanted)
    if fix:
        if all(r.ok for r in rows):
            print(setup_table(rows))
            print()
            say("--fix: nothing to fix, everything is in place (nothing was changed)")
            return
        done = apply_fixes(engine, rows)
        for line in done:
            say(f"--fix: {line}")
        rows = gather_rows(engine, settings, wanted)
    print(setup_table(rows))
    if all(r.ok for r in rows if r.check == "Docker engine" or r.check.startswith("builder")):
        print()
        print(capability_table(engine_capabilities(engine)))
    failed = [r for r in rows if not r.ok]
    if failed:
        print()
        raise CrossdockError("setup is incomplete:\n" + "\n".join(
            f"  {r.check}: {r.found}. Fix: {r.fix}" for r in failed))
    print()
    say(f"ready for {', '.join(p.docker for p in wanted)}")
