"""The engine and its builder: the docker CLI and buildx, for what a build, a join and the registry reads
need; the smoke tests' containers (``Engine.containers``, tasks/engine/containers.py) and the engine's
HTTP API (``Engine.api``, tasks/engine/api.py) are adapters of their own beside it.

``Engine`` is a ``Cli`` runner (tasks/engine/cli.py: reads with ``probe``, changes with ``act``) bound to the
configured buildx builder: every buildx call goes to that builder (``--builder``). Tests of task logic fake
this object; ``tests/test_engine.py`` checks the commands it sends through invoke's ``MockContext``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from invoke import Context

from ..core.buildx import parse_driver
from ..core.capabilities import Capability, EngineFacts, buildkit_version, capabilities, image_store
from ..core.errors import CrossdockError
from ..core.references import IndexEntry, attestations, index_entries, manifest_digest, parse_index
from .api import EngineApi
from .cli import Cli, Ran, _json_object, last_line, probe_run, registry_ca_env  # noqa: F401 (callers' names)
from .containers import Containers


class EngineError(CrossdockError):
    """The engine cannot do what was asked; one line naming what is missing and how to get it."""


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    builder: str
    driver: str
    buildkit: str = ""  # what `buildx inspect` reported ("" for the engine's own builder: not asked)


class Engine(Cli):
    def __init__(self, c: Context, *, builder: str = ""):
        super().__init__(c)
        self.builder = builder
        self.api = EngineApi()
        self.containers = Containers(self, self.api)
        self._info: EngineInfo | None = None
        self._facts: EngineFacts | None = None
        self._docker_info: dict | None = None  # what `docker info` said when info() asked

    def buildx(self, *args: str) -> tuple[str, ...]:
        """``docker buildx [--builder NAME] ARGS``: every buildx command goes to the configured builder."""
        return ("docker", "buildx", *(("--builder", self.builder) if self.builder else ()), *args)

    # --- the engine itself ------------------------------------------------------------------------------

    def info(self) -> EngineInfo:
        """Engine version and the builder's driver, probed once per run; ``EngineError`` with the fix."""
        if self._info is None:
            self._info = self._probe_info()
        return self._info

    def _probe_info(self) -> EngineInfo:
        if shutil.which("docker") is None:
            raise EngineError("the docker CLI is not on PATH: install Docker (Debian: apt-get install docker.io; "
                              "this project's machines: scripts/provision-local.sh)")
        docker_info, error = self._ask_docker_info()  # version and image store in one probe
        server = str(docker_info.get("ServerVersion") or "")
        if not server:
            raise EngineError(f"cannot reach the Docker engine ({error}): start dockerd "
                              f"(or scripts/provision-local.sh), or point DOCKER_HOST at a running engine")
        self._docker_info = docker_info
        if not self.builder and _default_builder_is_current() and _buildx_plugin_present():
            # The engine's own builder (driver `docker`), which the engine just answered for: no need to
            # start buildx to ask (the slowest probe of a run).
            return EngineInfo(server_version=server, builder="", driver="docker")
        r = self.probe(["docker", "buildx", "inspect", *([self.builder] if self.builder else [])])
        if not r.ok:
            # Only now ask whether buildx exists at all (one probe fewer on every healthy run).
            if not self.buildx_version().ok:
                raise EngineError("docker buildx is not installed: install the buildx CLI plugin (package "
                                  "docker-buildx or docker-buildx-plugin; on this project's machines "
                                  "scripts/provision-local.sh)")
            raise EngineError(f"buildx builder {self.builder or '(current)'!r} is not usable ({last_line(r.stderr)}): "
                              f"create it (docker buildx create --name {self.builder or 'NAME'}) or unset "
                              f"CROSSDOCK_BUILDER")
        return EngineInfo(server_version=server, builder=self.builder, driver=parse_driver(r.stdout),
                          buildkit=inspect_field(r.stdout, "BuildKit version", "BuildKit"))

    def capabilities(self) -> list[Capability]:
        """What this engine and builder can do (attestations, timestamp rewriting, ...), probed once per run."""
        return capabilities(self.current_facts())

    def current_facts(self) -> EngineFacts:
        """Engine version, BuildKit version, driver and image store of this engine and builder (once per run)."""
        if self._facts is None:
            info = self.info()  # reads `docker info` too, and keeps it
            self._facts = self.facts(info, self._docker_info or {})
        return self._facts

    @staticmethod
    def facts(info: EngineInfo, docker_info: dict) -> EngineFacts:
        return EngineFacts(engine_version=info.server_version,
                           buildkit_version=buildkit_version(info.buildkit, info.server_version, info.driver),
                           driver=info.driver,
                           image_store=image_store(docker_info.get("DriverStatus") or [],
                                                   str(docker_info.get("Driver", ""))))

    def _ask_docker_info(self) -> tuple[dict, str]:
        """What `docker info` says as JSON, and the CLI's last error line when the engine does not answer ({}):
        from the engine's socket when the CLI would talk to that engine (no CLI start), else through the CLI."""
        answer = self.api.info()
        if answer.get("ServerVersion"):
            return answer, ""
        r = self.probe(["docker", "info", "--format", "{{json .}}"])
        return (_json_object(r.stdout) if r.ok else {}), last_line(r.stderr)

    def engine_facts(self) -> dict:
        """`docker info` as JSON ({} when the engine does not answer), asked now."""
        return self._ask_docker_info()[0]

    def versions(self) -> Ran:
        """``client server`` versions (for `inv setup`)."""
        return self.probe(["docker", "version", "--format", "{{.Client.Version}} {{.Server.Version}}"])

    def buildx_version(self) -> Ran:
        return self.probe(["docker", "buildx", "version"])

    def bootstrap_builder(self) -> Ran:
        """``docker buildx inspect --bootstrap``: starts the builder when it is not running (a docker-container
        builder's BuildKit container), then inspects it. No read (``probe`` never changes anything): quiet,
        and run under ``inv --dry`` too, since `inv setup` reports what the builder can do from its answer."""
        return self.quiet(["docker", "buildx", "inspect", "--bootstrap", *([self.builder] if self.builder else [])])

    def create_builder(self, name: str) -> Ran:
        return self.act(["docker", "buildx", "create", "--name", name])

    def login(self, host: str, user: str, password: str) -> Ran:
        """``docker login --password-stdin``: the password never reaches a command line or the console."""
        return self.act(["docker", "login", "--username", user, "--password-stdin", host], stdin=password)

    def log_in(self, hosts: list[str], user: str, password: str) -> list[str]:
        """Log in to every registry host once (REGISTRY_USER / REGISTRY_PASSWORD); the hosts, in order.
        ``EngineError`` naming the host and the registry's answer, the password masked."""
        if not password:
            raise EngineError("REGISTRY_PASSWORD is empty")
        hosts = list(dict.fromkeys(hosts))
        for host in hosts:
            r = self.login(host, user, password)
            if not r.ok:
                answer = (r.stderr.strip().splitlines() or ["no answer"])[-1].replace(password, "***")
                raise EngineError(f"login to {host} as {user} failed: {answer}. Check REGISTRY_USER / "
                                  f"REGISTRY_PASSWORD")
        return hosts

    # --- images in registries (buildx imagetools, through the builder) --------------------------------

    def manifest_raw(self, ref: str) -> Ran:
        """The registry's bytes of a manifest or index, unchanged (so its digest is their sha256).

        Read over the registry's HTTP API in this process when the registry answers without credentials
        (one request instead of starting buildx: most of crossdock's fixed cost per run); otherwise, and
        for any error, through ``buildx imagetools inspect --raw``, which has the Docker client's
        credentials and the builder's registry configuration."""
        body = _read_anonymously(ref)
        if body is not None:
            return Ran(ok=True, stdout=body)
        return self.manifest_raw_via_buildx(ref)

    def manifest_raw_via_buildx(self, ref: str) -> Ran:
        """``manifest_raw`` through buildx only (what buildx itself can reach and trust)."""
        return self.probe(self.buildx("imagetools", "inspect", "--raw", ref))

    def image_index(self, ref: str) -> tuple[list[IndexEntry] | None, str]:
        """The platforms of an image's manifest list (None and the error if unreadable; an empty list for a
        single-platform image)."""
        entries, _, error = self.index_with_attestations(ref)
        return entries, error

    def index_with_attestations(self, ref: str) -> tuple[list[IndexEntry] | None, dict[str, str], str]:
        """From one read of ``ref``: the platforms of its manifest list (None and the error if unreadable; an
        empty list for a single-platform image) and ``{image digest: attestation manifest digest}``."""
        r = self.manifest_raw(ref)
        if not r.ok:
            return None, {}, last_line(r.stderr)
        data = _json_object(r.stdout)
        return parse_index(r.stdout), attestations(data) if data else {}, ""

    def index_digest(self, ref: str) -> tuple[str, list[IndexEntry]]:
        """The digest and platforms of the index a tag points at ('' and [] if unreadable)."""
        r = self.manifest_raw(ref)
        if not r.ok or not r.stdout:
            return "", []
        return manifest_digest(r.stdout), parse_index(r.stdout)

    def imagetools_create(self, tag: str, sources: list[str] | tuple[str, ...],
                          annotations: tuple[tuple[str, str], ...] = ()) -> Ran:
        """``imagetools create``; ``annotations`` go on the index (``--annotation index:KEY=VALUE``)."""
        notes = tuple(a for k, v in annotations for a in ("--annotation", f"index:{k}={v}"))
        return self.act(self.buildx("imagetools", "create", *notes, "--tag", tag, *sources))

    def join(self, tag: str, repository: str, sources: list[str], images: list[str],
             attested: list[str] | tuple[str, ...] = (),
             annotations: tuple[tuple[str, str], ...] = ()) -> tuple[str, str]:
        """Per-platform pushes (``repository@source``: an image, or an index of an image and its attestation)
        joined into one index under ``tag``: the index's digest, or '' and the problem. The index is read back
        and must list exactly ``images`` as its platforms, and keep an attestation for each image in
        ``attested`` (another run may move the same tag meanwhile): one registry round trip, the digest being
        the sha256 of the bytes `--raw` prints. ('', '') under --dry, where the command is only printed."""
        r = self.imagetools_create(tag, [f"{repository}@{d}" for d in sources], annotations)
        if self.dry:
            return "", ""
        if not r.ok:
            return "", f"imagetools create failed: {r.stderr.strip() or r.error}"
        raw = self.manifest_raw(tag)
        if not raw.ok or not raw.stdout:
            return "", f"{tag} cannot be read back after imagetools create: {raw.error}"
        data = json.loads(raw.stdout)
        listed = sorted(e.digest for e in index_entries(data))
        if listed != sorted(images):
            return "", (f"{tag} does not list the joined images (moved by a concurrent run?): expected "
                        f"{sorted(images)}, found {listed}")
        lost = sorted(set(attested) - set(attestations(data)))
        if lost:
            return "", f"{tag} lost the attestations of {lost} when joined"
        return manifest_digest(raw.stdout), ""

    # --- builds ---------------------------------------------------------------------------------------

    def build(self, argv: tuple[str, ...], log: IO[str] | None = None) -> Ran:
        """Run one planned ``docker buildx build`` (its argv already names the builder), output to ``log``."""
        return self.act(argv, out=log) if log is not None else self.act(argv, hide=False)

    def local_image_size(self, ref: str) -> str:
        return self.probe(["docker", "image", "inspect", "--format", "{{.Size}}", ref]).stdout.strip()

def inspect_field(inspect_output: str, *names: str) -> str:
    """The first of ``names`` found as a ``Name: value`` line of ``docker buildx inspect`` ('' if none)."""
    fields: dict[str, str] = {}
    for line in inspect_output.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return next((fields[n] for n in names if fields.get(n)), "")


def _default_builder_is_current() -> bool:
    """buildx would use the engine's default builder: no BUILDX_BUILDER, and no `docker buildx use NAME` in
    buildx's state (``current`` holds an empty name, or does not exist). Unsure: False (then ask buildx)."""
    import json
    import os

    if os.environ.get("BUILDX_BUILDER"):
        return False
    config = os.environ.get("BUILDX_CONFIG") or str(
        Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "buildx")
    current = Path(config) / "current"
    try:
        return not json.loads(current.read_text()).get("Name")
    except FileNotFoundError:
        return True
    except (OSError, ValueError, AttributeError):
        return False


def _buildx_plugin_present() -> bool:
    """A `docker-buildx` plugin where the docker CLI looks for plugins (its own search list)."""
    import os

    dirs = [Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "cli-plugins",
            *(Path(d) for d in ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                                "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins"))]
    return any(os.access(d / "docker-buildx", os.X_OK) for d in dirs)


def _read_anonymously(ref: str) -> str | None:
    """A manifest's bytes over HTTP without credentials, or None (unauthorised, unreachable, anything)."""
    from ..core.references import ReferenceError, parse_reference
    from .registry import MANIFEST_TYPES, Client, RegistryError, Repo

    try:
        parsed = parse_reference(ref)
    except ReferenceError:
        return None
    repo = Repo.parse(parsed.repository)
    try:
        status, _, body = Client(timeout=5).request(f"{repo.base}/manifests/{parsed.digest or parsed.tag or 'latest'}",
                                                    accept=MANIFEST_TYPES)
    except RegistryError:
        return None
    if status != 200:
        return None
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


def probe_engine(c: Context, *, builder: str = "") -> EngineInfo:
    """The engine's version and the builder's driver (see ``Engine.info``)."""
    return Engine(c, builder=builder).info()
