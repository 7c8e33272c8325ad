"""crossdock's settings: every knob declared once, with its default, its environment name, its help and
its parser.

Precedence, lowest to highest: the defaults below < the config file (invoke's: ``invoke.yaml`` beside
``tasks.py``, or ``inv -f FILE``, key ``crossdock``) < the environment and ``.env`` (``CROSSDOCK_*``)
< a task's command-line flag. Every value is parsed once, by the parser of its kind, into the type the
tasks use (platforms as ``Platform`` rows, numbers as numbers, the smoke command as an argument list);
a bad value stops the task before any work with one line naming the setting, the value and what is
accepted.

Pure: the environment and the config file arrive as mappings; nothing here reads ``os.environ``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CrossdockError
from .image import SPEC_KEYS
from .platforms import Platform, PlatformError, parse_platforms
from .references import (
    DOMAIN_RULE,
    PATH_RULE,
    REFERENCE_RULE,
    TAG_RULE,
    ReferenceError,
    is_domain,
    is_path,
    is_tag,
    parse_reference,
)

ENV_PREFIX = "CROSSDOCK_"
SUITE_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = SUITE_ROOT / "example"
# CROSSDOCK_* variables that are not task settings: scripts/provision-local.sh's parameters (and test.sh's).
OTHER_ENV = ("CROSSDOCK_STATE", "CROSSDOCK_LOCAL_REGISTRY", "CROSSDOCK_BASE_ARCHES", "CROSSDOCK_DEBIAN_MIRROR",
             "CROSSDOCK_DEBIAN_SECURITY_MIRROR", "CROSSDOCK_PLUGIN_DIR", "CROSSDOCK_VENV", "CROSSDOCK_DOCKERD_LOG",
             "CROSSDOCK_DOCKERD_PIDFILE", "CROSSDOCK_APT_SOURCES_DIR", "CROSSDOCK_SOURCE_DATE_EPOCH",
             "CROSSDOCK_ENGINE", "CROSSDOCK_IMAGE_STORE", "CROSSDOCK_DOCKER_DATA_ROOT", "CROSSDOCK_BASE_RELEASES",
             "CROSSDOCK_BUILD_CACHE_KEEP", "CROSSDOCK_MIN_FREE_GB",
             "CROSSDOCK_GIT_CREDENTIALS")  # a secret (tasks/engine/secrets.py), not a setting


class SettingsError(CrossdockError):
    """A setting with a value that cannot work; the message names the setting, the value and the fix."""


class BadValue(ValueError):
    """Raised by a parser: what would be accepted (the caller adds the setting's name and value), or, with
    ``reason=True``, a whole reason that already says what is accepted."""

    def __init__(self, message: str, *, reason: bool = False):
        super().__init__(message)
        self.reason = reason


# --- one parser per kind of knob (text in, typed value out, BadValue with what is accepted) ------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CARGO_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def text(value: str) -> str:
    return value


def cargo_name(value: str) -> str:
    """A cargo binary, package or profile name ('' = choose automatically)."""
    if value and not _CARGO_NAME.match(value):
        raise BadValue("letters, digits, '_' and '-' (a cargo target, package or profile name)")
    return value


def required_cargo_name(value: str) -> str:
    if not value:
        raise BadValue("a cargo profile name, e.g. release")
    return cargo_name(value)


def builder_name(value: str) -> str:
    if value and not _NAME.match(value):
        raise BadValue("a buildx builder name from `docker buildx ls` (letters, digits, '_', '.', '-'), or empty")
    return value


def count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise BadValue("a whole number >= 0")
    return number


def token_count(value: str) -> str:
    """The jobserver's tokens: 0 (off), auto (the build machine's cores, counted where cargo runs) or a
    number of jobs; as the build argument carries it."""
    if value.strip() == "auto":
        return "auto"
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise BadValue("a whole number >= 0 (0: no jobserver) or auto (the build machine's cores)")
    return str(number)


def port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise BadValue("a TCP port number from 1 to 65535")
    return number


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise BadValue("a number of seconds > 0")
    return number


def path(value: str) -> Path:
    if not value.strip():
        raise BadValue("a directory path")
    return Path(value).expanduser()


def file_path(value: str) -> Path:
    if not value.strip():
        raise BadValue("a file path")
    return Path(value).expanduser()


def optional_path(value: str) -> Path | None:
    return Path(value).expanduser() if value else None


def platform_list(value: str) -> tuple[Platform, ...]:
    try:
        return parse_platforms(value)
    except PlatformError as e:
        raise BadValue(str(e), reason=True) from None


def registry(value: str) -> str:
    value = value.rstrip("/")
    if value and not is_domain(value):
        raise BadValue(f"{DOMAIN_RULE}, or empty (then the image is a full reference)")
    return value


def image_names(value: str) -> str:
    """One repository (or several, comma-separated, for `inv release`); checked with the registry later."""
    names = [n.strip() for n in value.split(",")]
    if value and not all(names):
        raise BadValue("repository names separated by single commas")
    for name in names if value else []:
        if not is_path(name):
            try:  # with no registry setting, the name may start with one
                ref = parse_reference(name)
            except ReferenceError:
                raise BadValue(f"a repository: {PATH_RULE}") from None
            if ref.tag or ref.digest:
                raise BadValue("a repository without tag or digest (the tag is --tag)")
    return value


def cache_setting(value: str) -> str:
    """The registry build cache: off, on (in the image's own repository) or the repository to keep it in;
    ``read`` / ``read:<repository>`` import it without exporting (e.g. for pull requests)."""
    repository = value.removeprefix("read:") if value.startswith("read:") else value
    if repository in ("off", "on", "read") and repository == value:
        return value
    accepted = ("off, on (a cache in the image's repository, tags buildcache-<arch>), or the repository to keep "
                "it in (e.g. team/app-cache, or registry.example.com/team/app-cache); read or read:<repository> "
                "to import it only")
    if not repository or "," in repository or repository in ("off", "on", "read"):
        raise BadValue(accepted)
    try:
        image_names(repository)
    except BadValue:
        raise BadValue(accepted) from None
    return value


def tag(value: str) -> str:
    if not is_tag(value):
        raise BadValue(TAG_RULE)
    return value


def image_reference(value: str) -> str:
    try:
        parse_reference(value)
    except ReferenceError:
        raise BadValue(REFERENCE_RULE) from None
    return value


def choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise BadValue(" or ".join(repr(o) for o in options))
        return value
    return parse


def argv(value: str) -> tuple[str, ...]:
    try:
        args = tuple(shlex.split(value))
    except ValueError as e:
        raise BadValue(f"a shell-quoted argument list ({e})") from None
    if not args:
        raise BadValue("at least one argument, e.g. --version")
    return args


_DEB_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def package_list(value: str) -> tuple[str, ...]:
    """Debian package names, separated by commas or spaces (a TOML list in Cargo.toml or a config file)."""
    names = tuple(n for n in re.split(r"[,\s]+", value) if n)
    bad = [n for n in names if not _DEB_PACKAGE.match(n)]
    if bad:
        raise BadValue("Debian package names (lowercase letters, digits, '+', '-', '.'; no version or "
                       f"architecture: crossdock adds the target's), separated by commas; not {', '.join(bad)}")
    return names


PLACEHOLDERS = ("{version}", "{arch}")


def output_pattern(value: str) -> str:
    """Text the smoke run's output must contain; {version} and {arch} are filled in per platform."""
    rest = value
    for placeholder in PLACEHOLDERS:
        rest = rest.replace(placeholder, "")
    if "{" in rest or "}" in rest:
        raise BadValue("text with the placeholders {version} (the package version) and {arch} (the platform's "
                       "Rust ARCH, e.g. aarch64) and no other braces, e.g. '{version} ({arch}-linux)'; empty: "
                       "exit code 0 is enough")
    return value


def http_path(value: str) -> str:
    if value and (not value.startswith("/") or any(ch.isspace() for ch in value)):
        raise BadValue("an HTTP path starting with '/' (e.g. /healthz), or empty for no service check")
    return value


COSIGN_KMS_SCHEMES = ("env", "awskms", "gcpkms", "azurekms", "hashivault", "k8s", "pkcs11", "gitlab")


def key_reference(value: str) -> str:
    """A cosign signing key: a private key file (cosign.key) or a KMS URI cosign understands; '' = no signing."""
    scheme, sep, _ = value.partition("://")
    if sep and scheme not in COSIGN_KMS_SCHEMES:
        raise BadValue(f"a cosign private key file (e.g. cosign.key) or a KMS URI "
                       f"({', '.join(s + '://' for s in COSIGN_KMS_SCHEMES)}), or empty for no signing")
    if value and not value.strip():
        raise BadValue("a cosign private key file (e.g. cosign.key), or empty for no signing")
    return value


@dataclass(frozen=True)
class Knob:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = text
    flag: str = ""  # the command-line flag, when it is not --<name-with-dashes>

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


KNOBS: tuple[Knob, ...] = (
    Knob("project", "", "Path of the Rust project (its Cargo.toml directory). Empty: the bundled example.",
         optional_path),
    Knob("bin", "", "Binary to ship. Empty: the project's only binary (or the one named like the package).",
         cargo_name),
    Knob("package", "", "Cargo package / workspace member that builds the binary (cargo --package)."),
    Knob("platforms", "amd64,arm64,arm/v7", "Comma-separated platforms, e.g. amd64,arm64,arm (= arm/v7).",
         platform_list),
    Knob("registry", "127.0.0.1:5000", "Registry host[:port] to push to. Empty: IMAGE is a full reference.", registry),
    Knob("image", "", "Repository name inside the registry. Empty: the binary name.", image_names),
    Knob("tag", "dev", "Tag of the manifest list that `inv build` creates.", tag),
    Knob("output", "push", "push: push each arch and join them into one manifest list; "
         "load: load one local image per arch tagged <tag>-<arch>, no registry needed.", choice("push", "load")),
    Knob("jobs", "0", "How many architectures build (or smoke-test) at once. 0: all of them.", count),
    Knob("compile_slots", "1", "Only with compile-tokens=0 (the jobserver off): how many cargo compile steps may "
         "run at once on one build daemon (each uses all its cores; the other build steps always overlap). "
         "0: no limit.", count),
    Knob("compile_tokens", "auto", "One jobserver per build daemon, shared by every cargo of every arch and "
         "project: all compiles together run at most this many jobs, and a core one compile leaves idle is taken "
         "by another. auto: the build machine's cores; 0: off (compile-slots applies).", token_count),
    Knob("joint_compile", "auto", "auto: two or more platforms built on one build daemon are compiled by one cargo "
         "with every target (build scripts, proc-macros and their dependencies compiled once, not once per "
         "platform), unless the targets' resolved features differ (then each platform has its own cargo, and the "
         "build says why); never with --no-join. off: one cargo per platform.", choice("auto", "off")),
    Knob("builder", "", "buildx builder name (docker buildx ls). Empty: the current builder.", builder_name),
    Knob("builder_image", "docker.io/library/rust:1-trixie",
         "Image of the native compile stage: a rustup image, or a plain Debian (uses Debian's rustc-web).",
         image_reference),
    Knob("runtime_image", "docker.io/library/debian:trixie-slim",
         "Runtime base image. Must be the same Debian release as the builder (glibc).", image_reference),
    Knob("cargo_profile", "release", "Cargo profile to build with.", required_cargo_name),
    Knob("port", "8080", "Port the service listens on (EXPOSE in the image).", port),
    Knob("out_dir", "out", "Where reports and per-arch logs go (relative to the working directory).", path),
    Knob("runtime", "slim", "Runtime image flavour: slim (the runtime image, a Debian), minimal (from scratch: only "
         "the Debian files the binary needs plus runtime packages; no shell), static (a static binary on scratch).",
         choice("slim", "minimal", "static")),
    Knob("build_packages", "", "Debian packages for the TARGET architecture the compile needs (e.g. libssl-dev): "
         "installed as <name>:<arch> in the native cross stage, with pkg-config set up for the target.",
         package_list),
    Knob("build_tools", "", "Debian packages for the build machine the compile needs (e.g. protobuf-compiler, "
         "cmake, clang).", package_list),
    Knob("runtime_packages", "", "Debian packages the binary needs at run time (e.g. libssl3t64, ca-certificates): "
         "unpacked natively for the target, never installed under emulation.", package_list),
    Knob("smoke_command", "--version", "Arguments `inv smoke` runs the image with; the output must name the "
         "version and the platform's architecture.", argv, flag="--command"),
    Knob("smoke_expect", "{version}", "Text the smoke run's output must contain ({version}: the package version, "
         "{arch}: the platform's Rust ARCH). Empty: exit code 0 is enough.", output_pattern, flag="--expect"),
    Knob("health_path", "", "HTTP path `inv smoke` expects a 200 from on PORT. Empty: no service check.",
         http_path),
    Knob("smoke_timeout", "180", "Seconds each smoke step may take under emulation (native platforms get a quarter).",
         seconds, flag="--timeout"),
    Knob("provenance", "auto", "SLSA provenance attestation attached to every platform: max, min, off, or auto (max "
         "where the engine can attach attestations, off with a note where it cannot).",
         choice("auto", "max", "min", "off")),
    Knob("reproducible", "auto", "Rewrite every file's timestamp to SOURCE_DATE_EPOCH (the commit's time) so the same "
         "commit gives the same image digests: on, off, or auto (on where BuildKit can rewrite timestamps).",
         choice("auto", "on", "off")),
    Knob("cache", "off", "Registry build cache for runners that start empty (CI): on keeps it in the image's "
         "repository under buildcache-<arch> tags (--cache-from, and --cache-to type=registry, mode=max), or name "
         "another repository for it; read (or read:<repository>) imports it without exporting, e.g. for pull "
         "requests; off: BuildKit's local cache only. Needs a builder that can export a cache (the containerd "
         "image store, or a docker-container builder).", cache_setting),
    Knob("build_network", "default", "Network of the compile steps that fetch crates: default (BuildKit's own, "
         "what reaches a private registry or git host in real use) or host (the build machine's: a server on its "
         "loopback; crossdock passes --allow network.host, which the builder must permit).",
         choice("default", "host")),
    Knob("ssh_known_hosts", "~/.ssh/known_hosts", "Known hosts for git dependencies over SSH (checked strictly in "
         "the compile steps, handed to them as a build secret with the forwarded SSH agent).", file_path),
    Knob("sign_key", "", "cosign private key (file or KMS URI) `inv release` signs the published index, its "
         "platforms and their SBOM attestations with, offline (no transparency log). Its password: COSIGN_PASSWORD "
         "in .env or the environment. Empty: no signing.", key_reference),
)

KNOB_NAMES = tuple(k.name for k in KNOBS)
BY_NAME: dict[str, Knob] = {k.name: k for k in KNOBS}
DEFAULTS: dict[str, str] = {k.name: k.default for k in KNOBS}
HELP: dict[str, str] = {k.name: f"{k.help} [{k.env}; default: {k.default!r}]" for k in KNOBS}


def flag_help(*settings: str, extend: Mapping[str, str] | None = None) -> dict[str, str]:
    """invoke `help=` for the settings a task takes: each one's own help under its flag (``--command`` for
    smoke_command), with ``extend``'s sentence added where a task says more."""
    return {BY_NAME[name].option.removeprefix("--"): HELP[name] + (f" {extend[name]}" if extend and name in extend
                                                                     else "")
            for name in settings}


def bad_value(knob: Knob, value: str, accepted: str, *, reason: bool = False) -> SettingsError:
    """One line: the setting, its bad value, where it is set and what would be accepted."""
    return SettingsError(f"{knob.name} {value!r} is not valid ({knob.option} or {knob.env}): "
                         + (accepted if reason else f"expected {accepted}"))


def parse_value(knob: Knob, value: str) -> Any:
    try:
        return knob.parse(value)
    except BadValue as e:
        raise bad_value(knob, value, str(e), reason=e.reason) from None


@dataclass(frozen=True)
class Settings:
    project: Path
    bin: str
    package: str
    platforms: tuple[Platform, ...]
    registry: str
    image: str
    tag: str
    output: str
    jobs: int
    compile_slots: int
    compile_tokens: str
    joint_compile: str
    builder: str
    builder_image: str
    runtime_image: str
    cargo_profile: str
    port: int
    out_dir: Path
    runtime: str
    build_packages: tuple[str, ...]
    build_tools: tuple[str, ...]
    runtime_packages: tuple[str, ...]
    smoke_command: tuple[str, ...]
    smoke_expect: str
    health_path: str
    smoke_timeout: float
    provenance: str
    reproducible: str
    cache: str
    sign_key: str
    build_network: str
    ssh_known_hosts: Path


def _text(value: Any) -> str:
    """A value from TOML/YAML as the text a flag would carry (lists become comma-separated)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def layers(*, config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
           cli: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The precedence, lowest first: the project's Cargo metadata (it cannot move the project), the config
    file, the environment, the CLI flags; each as {setting: value}, ``None`` meaning "not set there"."""
    return [{k: v for k, v in metadata_layer(metadata).items() if k in BY_NAME and k != "project"},
            {k: v for k, v in (config or {}).items() if k in BY_NAME},
            {k.name: (environ or {}).get(k.env) for k in KNOBS},
            dict(cli or {})]


def raw_value(name: str, *, config: Mapping[str, Any] | None, environ: Mapping[str, str] | None,
              cli: Mapping[str, Any] | None) -> str:
    """The text that wins for one setting, before parsing (to find the project whose metadata to read)."""
    found = [layer[name] for layer in layers(config=config, environ=environ, cli=cli) if layer.get(name) is not None]
    return _text(found[-1]) if found else BY_NAME[name].default


def project_dir(raw: str, cwd: Path | None = None) -> Path:
    return ((cwd or Path.cwd()) / (Path(raw).expanduser() if raw else EXAMPLE_PROJECT)).resolve()


def metadata_layer(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """``[package.metadata.crossdock]`` keys as setting names (``health-path`` -> ``health_path``)."""
    return {str(k).replace("-", "_"): v for k, v in (metadata or {}).items()}


def resolve(
    *,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Settings:
    """Layer defaults < the project's Cargo metadata < config file < environment < CLI flags (``None``
    means "flag not given"), then parse every value once. Unknown keys are ignored here (see
    ``unknown_names``); the project's own metadata cannot move the project."""
    unknown_cli = set(cli or {}) - set(KNOB_NAMES)
    if unknown_cli:  # a task passing a flag that is no setting: a bug in crossdock, not the user's input
        raise TypeError(f"not settings: {sorted(unknown_cli)}")
    values: dict[str, str] = dict(DEFAULTS)
    for layer in layers(config=config, environ=environ, cli=cli, metadata=metadata):
        for name, value in layer.items():
            if value is not None:
                values[name] = _text(value)
    parsed = {k.name: parse_value(k, values[k.name]) for k in KNOBS}
    base = cwd or Path.cwd()
    parsed.update(project=project_dir(values["project"], base), out_dir=(base / parsed["out_dir"]).resolve())
    return Settings(**parsed)


def unknown_metadata_keys(metadata: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The project's crossdock metadata keys that are neither a setting nor an image key, kebab-case, each with
    the closest known name ('' when none is close). `inv build` refuses them; the other tasks warn."""
    from difflib import get_close_matches

    known = KNOB_NAMES + SPEC_KEYS
    return [(key.replace("_", "-"), next((c.replace("_", "-") for c in get_close_matches(key, known, n=1)), ""))
            for key in sorted(metadata_layer(metadata)) if key not in known and key != "project"]


def unknown_names(*, config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                  metadata: Mapping[str, Any] | None = None, manifest: str = "Cargo.toml") -> list[str]:
    """Warnings for config keys, Cargo metadata keys and CROSSDOCK_* variables that are no setting, with
    the closest known name."""
    from difflib import get_close_matches

    about_metadata = [(key, f"warning: {manifest}: [package.metadata.crossdock] key {key} is not a setting or image "
                            f"key" + (f" (did you mean {close}?)" if close else "") + ": `inv build` refuses it")
                      for key, close in unknown_metadata_keys(metadata)]
    if "project" in metadata_layer(metadata):
        about_metadata.append(("project", f"warning: {manifest}: crossdock metadata cannot set project (it is this "
                                          f"project); ignored"))
    warnings = [text for _, text in sorted(about_metadata)]
    for key in sorted(set(config or {}) - set(KNOB_NAMES)):
        close = get_close_matches(str(key), KNOB_NAMES, n=1)
        warnings.append(f"warning: config key crossdock.{key} is not a setting and is ignored"
                        + (f" (did you mean {close[0]}?)" if close else f" (settings: {', '.join(KNOB_NAMES)})"))
    known_env = [k.env for k in KNOBS] + list(OTHER_ENV)
    for var in sorted(v for v in (environ or {}) if v.startswith(ENV_PREFIX) and v not in known_env):
        close = get_close_matches(var, known_env, n=1)
        warnings.append(f"warning: {var} is not a crossdock setting and is ignored"
                        + (f" (did you mean {close[0]}?)" if close else ""))
    return warnings


def parse_env_example(text_: str) -> dict[str, str]:
    """KEY=VALUE lines of a ``.env``-style file, comments and blank lines skipped (also ``# KEY=``)."""
    result: dict[str, str] = {}
    for raw in text_.splitlines():
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


def parse_flag(flag: str, value: str, parse: Callable[[str], Any]) -> Any:
    """A task-only flag (no setting behind it), parsed by one of the parsers above."""
    try:
        return parse(value)
    except BadValue as e:
        raise SettingsError(f"{flag} {value!r} is not valid: " + (str(e) if e.reason else f"expected {e}")) from None


def tag_prefix_parser(value: str) -> str:
    """The prefix of version tags in git (``v`` for v1.2.3; empty for 1.2.3)."""
    if value and not re.match(r"^[A-Za-z0-9_.-]+$", value):
        raise BadValue("letters, digits, '_', '.' and '-' (e.g. v), or empty")
    return value


REFERENCE_START = "<!-- generated from KNOBS by scripts/settings-reference.py: do not edit by hand -->"
REFERENCE_END = "<!-- end of the generated table -->"


def reference_table(tasks_of: Mapping[str, Sequence[str]]) -> str:
    """The settings reference (docs/settings.md's table): every knob's Cargo.toml key, flag, variable, default,
    the tasks that take it as a flag (``tasks_of``: setting -> task names) and its help. Pure."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| setting (Cargo.toml key) | flag | environment / `.env` | default | tasks | meaning |",
            "|---|---|---|---|---|---|"]
    for k in KNOBS:
        key = "(not in Cargo.toml)" if k.name == "project" else f"`{k.name.replace('_', '-')}`"
        tasks = ", ".join(f"`{t}`" for t in tasks_of.get(k.name, ())) or "(environment, config file)"
        default = f"`{k.default}`" if k.default else "(empty)"
        rows.append(f"| {key} | `{k.option}` | `{k.env}` | {default} | {tasks} | {cell(k.help)} |")
    return "\n".join([REFERENCE_START, *rows, REFERENCE_END])
