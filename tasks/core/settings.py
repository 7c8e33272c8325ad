"""crossdock's settings: every knob declared once, with its default, its environment name and its help.

Precedence, lowest to highest: the defaults below < the config file (invoke's: ``invoke.yaml`` beside
``tasks.py``, or ``inv -f FILE``, key ``crossdock``) < the environment and ``.env`` (``CROSSDOCK_*``)
< a task's command-line flag.

Pure: the environment and the config file arrive as mappings; nothing here reads ``os.environ``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "CROSSDOCK_"
SUITE_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = SUITE_ROOT / "example"


@dataclass(frozen=True)
class Knob:
    name: str
    default: str
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


KNOBS: tuple[Knob, ...] = (
    Knob("project", "", "Path of the Rust project (its Cargo.toml directory). Empty: the bundled example."),
    Knob("bin", "", "Binary to ship. Empty: the project's only binary (or the one named like the package)."),
    Knob("package", "", "Cargo package / workspace member that builds the binary (cargo --package)."),
    Knob("platforms", "amd64,arm64,arm/v7", "Comma-separated platforms, e.g. amd64,arm64,arm (= arm/v7)."),
    Knob("registry", "127.0.0.1:5000", "Registry host[:port] to push to. Empty: IMAGE is a full reference."),
    Knob("image", "", "Repository name inside the registry. Empty: the binary name."),
    Knob("tag", "dev", "Tag of the manifest list that `inv build` creates."),
    Knob("output", "push", "push: push each arch and join them into one manifest list; "
         "load: load one local image per arch tagged <tag>-<arch>, no registry needed."),
    Knob("jobs", "0", "How many architectures build (or smoke-test) at once. 0: all of them."),
    Knob("compile_slots", "1", "How many cargo compile steps may run at once on one build daemon (each uses "
         "all its cores; the other build steps always overlap). 0: no limit."),
    Knob("builder", "", "buildx builder name (docker buildx ls). Empty: the current builder."),
    Knob("builder_image", "docker.io/library/rust:1-bookworm",
         "Image of the native compile stage: a rustup image, or a plain Debian (uses Debian's rustc-web)."),
    Knob("runtime_image", "docker.io/library/debian:bookworm-slim",
         "Runtime base image. Must be the same Debian release as the builder (glibc)."),
    Knob("cargo_profile", "release", "Cargo profile to build with."),
    Knob("port", "8080", "Port the service listens on (EXPOSE in the image)."),
    Knob("out_dir", "out", "Where reports and per-arch logs go (relative to the working directory)."),
    Knob("smoke_command", "--version", "Arguments `inv smoke` runs the image with; the output must name the "
         "version and the platform's architecture."),
    Knob("health_path", "/healthz", "HTTP path `inv smoke` expects a 200 from on PORT. Empty: no service check."),
    Knob("smoke_timeout", "180", "Seconds each smoke step may take under emulation (native platforms get a quarter)."),
)

KNOB_NAMES = tuple(k.name for k in KNOBS)
DEFAULTS: dict[str, str] = {k.name: k.default for k in KNOBS}
HELP: dict[str, str] = {k.name: f"{k.help} [{k.env}; default: {k.default!r}]" for k in KNOBS}


def flag_help(*settings: str, **flags: str) -> dict[str, str]:
    """invoke `help=` for a task: the settings' own help under their flag names, plus task-only flags
    (keyword names use _ for -; a value starting with "+" extends the setting's help)."""
    result = {name.replace("_", "-"): HELP[name] for name in settings}
    for name, text in flags.items():
        flag = name.replace("_", "-")
        result[flag] = HELP[name] + text[1:] if text.startswith("+") else text
    return result


class SettingsError(ValueError):
    """A setting with a value that cannot work; the message names the setting and the fix."""


@dataclass(frozen=True)
class Settings:
    project: Path
    bin: str
    package: str
    platforms: str
    registry: str
    image: str
    tag: str
    output: str
    jobs: int
    compile_slots: int
    builder: str
    builder_image: str
    runtime_image: str
    cargo_profile: str
    port: str
    out_dir: Path
    smoke_command: str
    health_path: str
    smoke_timeout: str


def resolve(
    *,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Layer defaults < config file < environment < CLI flags (``None`` means "flag not given")."""
    values: dict[str, str] = dict(DEFAULTS)
    for layer in (config or {}, {k.name: (environ or {}).get(k.env) for k in KNOBS}, cli or {}):
        unknown = set(layer) - set(KNOB_NAMES)
        if unknown:
            raise SettingsError(f"unknown setting(s) {sorted(unknown)}; known: {', '.join(KNOB_NAMES)}")
        for name, value in layer.items():
            if value is not None:
                values[name] = str(value)
    base = cwd or Path.cwd()
    if values["output"] not in ("push", "load"):
        raise SettingsError(f"output must be 'push' or 'load', not {values['output']!r} "
                            f"(--output or {ENV_PREFIX}OUTPUT)")
    try:
        jobs = int(values["jobs"])
    except ValueError:
        jobs = -1
    if jobs < 0:
        raise SettingsError(f"jobs must be a whole number >= 0, not {values['jobs']!r} (0 = all at once)")
    try:
        compile_slots = int(values["compile_slots"])
    except ValueError:
        compile_slots = -1
    if compile_slots < 0:
        raise SettingsError(f"compile_slots must be a whole number >= 0, not {values['compile_slots']!r} "
                            f"(--compile-slots or {ENV_PREFIX}COMPILE_SLOTS; 0 = no limit)")
    try:
        timeout_ok = float(values["smoke_timeout"]) > 0
    except ValueError:
        timeout_ok = False
    if not timeout_ok:
        raise SettingsError(f"smoke_timeout must be a number of seconds > 0, not {values['smoke_timeout']!r} "
                            f"(--timeout or {ENV_PREFIX}SMOKE_TIMEOUT)")
    try:
        if not shlex.split(values["smoke_command"]):
            raise ValueError("empty")
    except ValueError as e:
        raise SettingsError(f"smoke_command {values['smoke_command']!r} is not a usable argument list ({e}) "
                            f"(--command or {ENV_PREFIX}SMOKE_COMMAND)") from None
    project = Path(values["project"]).expanduser() if values["project"] else EXAMPLE_PROJECT
    out_dir = Path(values["out_dir"]).expanduser()
    typed = {f.name: values[f.name] for f in fields(Settings)}
    typed.update(project=(base / project).resolve(), out_dir=(base / out_dir).resolve(), jobs=jobs,
                 compile_slots=compile_slots)
    return Settings(**typed)


def parse_env_example(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a ``.env``-style file, comments and blank lines skipped (also ``# KEY=``)."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
            if "=" not in line or " " in line.split("=", 1)[0]:
                continue
        if not line or "=" not in line:
            continue
        key, value = line.split("=", 1)
        result[key.strip()] = value.strip()
    return result
