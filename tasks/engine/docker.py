"""The one adapter between crossdock and Docker: every ``docker`` / ``docker buildx`` command a task runs.

``Engine`` wraps invoke's context and the configured buildx builder: every buildx call goes to that
builder (``--builder``), reads are quiet and run even under ``inv --dry`` (``probe``), writes echo under
``--dry`` and run nowhere. Tests of task logic fake this object; ``tests/test_engine.py`` checks the
commands it sends through invoke's ``MockContext``.
"""

from __future__ import annotations

import functools
import io
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from invoke import Context
from invoke.exceptions import CommandTimedOut

from ..core.buildx import parse_driver
from ..core.capabilities import Capability, EngineFacts, buildkit_version, capabilities, image_store
from ..core.errors import CrossdockError
from ..core.references import IndexEntry, attestations, index_entries, manifest_digest, parse_index


def probe_run(c: Context, argv: list[str] | tuple[str, ...], **kwargs: Any):  # -> invoke.Result
    """A read-only command: quiet, never fails the task, and runs even under `inv --dry`."""
    options: dict[str, Any] = dict(hide=True, warn=True, echo=False, in_stream=False, dry=False)
    options.update(kwargs)
    return c.run(shlex.join(argv), **options)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class EngineError(CrossdockError):
    """The engine cannot do what was asked; one line naming what is missing and how to get it."""


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    builder: str
    driver: str
    buildkit: str = ""  # what `buildx inspect` reported ("" for the engine's own builder: not asked)


@dataclass(frozen=True)
class Ran:
    """What a command did: exit status and its output (the parts of invoke's Result crossdock reads)."""

    ok: bool
    stdout: str = ""
    stderr: str = ""
    exited: int = 0
    timed_out: bool = False

    @property
    def error(self) -> str:
        return last_line(self.stderr or self.stdout)


def _json_object(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _ran(r: Any) -> Ran:
    return Ran(ok=r.ok, stdout=r.stdout, stderr=r.stderr, exited=r.exited)


class Engine:
    def __init__(self, c: Context, *, builder: str = ""):
        self.c = c
        self.builder = builder
        self._info: EngineInfo | None = None
        self._facts: EngineFacts | None = None
        self._docker_info: dict | None = None  # what `docker info` said when info() asked

    @property
    def dry(self) -> bool:
        return bool(self.c.config.run.dry)

    def buildx(self, *args: str) -> tuple[str, ...]:
        """``docker buildx [--builder NAME] ARGS``: every buildx command goes to the configured builder."""
        return ("docker", "buildx", *(("--builder", self.builder) if self.builder else ()), *args)

    def probe(self, argv: list[str] | tuple[str, ...], **kwargs: Any) -> Ran:
        env = registry_ca_env()
        if env:
            kwargs.setdefault("env", env)
        try:
            return _ran(probe_run(self.c, argv, **kwargs))
        except CommandTimedOut as e:
            return Ran(ok=False, stderr=f"timed out after {e.timeout:.0f}s", exited=-1, timed_out=True)

    def act(self, argv: list[str] | tuple[str, ...], *, stdin: str | None = None, out: IO[str] | None = None,
            hide: bool = True) -> Ran:
        """A command that changes something: printed instead of run under ``inv --dry``."""
        options: dict[str, Any] = dict(warn=True, in_stream=io.StringIO(stdin) if stdin is not None else False)
        if stdin is not None:
            options["echo_stdin"] = False
        if out is not None:
            options.update(out_stream=out, err_stream=out, echo=False, hide=False)
        else:
            options["hide"] = hide
        env = registry_ca_env()
        if env:
            options["env"] = env
        r = self.c.run(shlex.join(argv), **options)
        return _ran(r) if r is not None else Ran(ok=True)

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
        docker_info = self._info_from_api()  # version and image store in one probe
        if not docker_info.get("ServerVersion"):
            r = self.probe(["docker", "info", "--format", "{{json .}}"])
            docker_info = _json_object(r.stdout) if r.ok else {}
        server = str(docker_info.get("ServerVersion") or "")
        if not server:
            raise EngineError(f"cannot reach the Docker engine ({last_line(r.stderr)}): start dockerd "
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

    def _info_from_api(self) -> dict:
        """``GET /info`` from the engine's socket when the CLI would talk to that engine (what ``docker info``
        prints as JSON, without starting the CLI: ~0.05 s of every run); {} when there is no such socket or
        it does not answer (then the CLI asks, and its error is the one reported)."""
        if not self.api_socket():
            return {}
        try:
            status, _, body = self._api_request("GET", "/info", timeout=30)
        except EngineError:
            return {}
        return _json_object(body.decode(errors="replace")) if status == 200 else {}

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

    def engine_facts(self) -> dict:
        """`docker info` as JSON ({} when the engine does not answer), asked now."""
        r = self.probe(["docker", "info", "--format", "{{json .}}"])
        return _json_object(r.stdout) if r.ok else {}

    def versions(self) -> Ran:
        """``client server`` versions (for `inv setup`)."""
        return self.probe(["docker", "version", "--format", "{{.Client.Version}} {{.Server.Version}}"])

    def buildx_version(self) -> Ran:
        return self.probe(["docker", "buildx", "version"])

    def inspect_builder(self, *, bootstrap: bool = False) -> Ran:
        return self.probe(["docker", "buildx", "inspect", *(["--bootstrap"] if bootstrap else []),
                           *([self.builder] if self.builder else [])])

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

    # --- containers (smoke tests) ---------------------------------------------------------------------

    def pull(self, ref: str, platform: str, *, timeout: float) -> Ran:
        return self.probe(["docker", "pull", "--quiet", "--platform", platform, ref], timeout=timeout)

    def image_config(self, ref: str) -> dict:
        """One element of ``docker image inspect`` ({} when it fails)."""
        import json

        r = self.probe(["docker", "image", "inspect", ref])
        return json.loads(r.stdout)[0] if r.ok else {}

    def create(self, ref: str, platform: str) -> Ran:
        return self.probe(["docker", "create", "--platform", platform, ref])

    def remove(self, container: str) -> None:
        self.probe(["docker", "rm", "-f", container])

    def run(self, ref: str, platform: str, args: list[str] | tuple[str, ...], *, name: str, timeout: float) -> Ran:
        """``docker run --rm`` in the foreground, named so a timed-out run can be removed."""
        return self.probe(["docker", "run", "--rm", "--name", name, "--platform", platform, ref, *args],
                          timeout=timeout)

    def probe_files(self, ref: str, platform: str, args: tuple[str, ...], *, name: str, timeout: float) -> Ran:
        """Run the spec probe (tasks/core/spec_checks.py) in a container of the image, as its user: the build
        machine's static busybox, mounted read-only, stats the declared paths and writes into the declared
        directories. Not ok, with the fix, when this machine has no static busybox."""
        from ..core.elf import ElfError, parse_elf
        from ..core.spec_checks import probe_argv

        probe = shutil.which("busybox") or "/bin/busybox"
        try:
            with open(probe, "rb") as f:
                static = not parse_elf(f.read()).interpreter
        except (OSError, ElfError):
            static = False
        if not static:
            return Ran(ok=False, stderr=f"no static busybox at {probe} to probe the image's files with: apt-get "
                                        f"install busybox-static (scripts/provision-local.sh packages)", exited=-1)
        return self.probe(probe_argv(ref=ref, platform=platform, probe=probe, args=args, name=name), timeout=timeout)

    def start_service(self, ref: str, platform: str, port: int) -> Ran:
        """``docker run -d`` with the service's port published on loopback only."""
        return self.probe(["docker", "run", "-d", "--platform", platform, "-p", f"127.0.0.1::{port}", ref])

    def host_port(self, container: str, port: int) -> str:
        mapped = self.probe(["docker", "port", container, f"{port}/tcp"]).stdout.strip().splitlines()
        return mapped[0].rsplit(":", 1)[-1] if mapped else ""

    def running(self, container: str) -> bool:
        return self.probe(["docker", "inspect", "--format", "{{.State.Running}}", container]).stdout.strip() == "true"

    def logs(self, container: str, *, tail: int = 20) -> str:
        r = self.probe(["docker", "logs", "--tail", str(tail), container])
        return (r.stdout + r.stderr).strip()

    def export(self, container: str, dest: Path, *, timeout: float) -> Ran:
        """``docker export --output DEST``: a created (never started) container's whole file system as one
        tar file, read natively by the smoke checks (nothing runs, nothing is emulated)."""
        return self.probe(["docker", "export", "--output", str(dest), container], timeout=timeout)

    def api_socket(self) -> str:
        """The engine's unix socket, when it is the engine the docker CLI talks to (DOCKER_HOST unset or
        ``unix://``, no other context chosen) and it is there; '' otherwise (remote engines, contexts: then
        the smoke checks read a container's files with ``docker export`` instead)."""
        cached = getattr(self, "_api_socket_path", None)
        if cached is None:
            cached = self._api_socket_path = self._find_api_socket()
        return cached

    def _find_api_socket(self) -> str:
        import json
        import os
        import stat

        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return ""
        if not host:
            if os.environ.get("DOCKER_CONTEXT", "default") != "default":
                return ""
            config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
            try:
                current = json.loads(config.read_text()).get("currentContext") or "default"
            except FileNotFoundError:
                current = "default"
            except (OSError, ValueError, AttributeError):
                return ""
            if current != "default":
                return ""
        path = host[len("unix://"):] if host else "/var/run/docker.sock"
        try:
            return path if stat.S_ISSOCK(os.stat(path).st_mode) else ""
        except OSError:
            return ""

    def _api_request(self, method: str, url: str, *, timeout: float) -> tuple[int, dict[str, str], bytes]:
        """One request to the engine's API over its unix socket (``EngineError`` when it does not answer)."""
        import http.client
        import socket

        path = self.api_socket()
        if not path:
            raise EngineError("the engine's API socket is not available here")

        class UnixConnection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)

        conn = UnixConnection("localhost", timeout=timeout)
        try:
            conn.request(method, url)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise EngineError(f"the engine's API at {path} did not answer {method} {url}: {e}") from e
        finally:
            conn.close()

    def container_path_stat(self, container: str, path: str, *, timeout: float = 60) -> dict | None:
        """What ``docker cp`` learns about a path in a container before copying (the archive endpoint's
        HEAD): name, size, Go file mode and, for a link, its fully resolved target. Directories on the way
        are followed; the last component is not. None: no such path."""
        import base64
        import json
        from urllib.parse import quote

        status, headers, body = self._api_request("HEAD", f"/containers/{quote(container)}/archive?path={quote(path)}",
                                              timeout=timeout)
        if status == 404:
            return None
        header = headers.get("x-docker-container-path-stat", "")
        if status != 200 or not header:
            if status >= 500:  # a HEAD answer has no body: ask again for the engine's message (e.g. a link loop)
                status, _, body = self._api_request("GET", f"/containers/{quote(container)}/archive?path="
                                                           f"{quote(path)}", timeout=timeout)
            raise EngineError(f"cannot stat {path} in container {container[:12]}: HTTP {status} "
                              f"{body.decode(errors='replace').strip()}")
        return json.loads(base64.b64decode(header))

    def container_path_archive(self, container: str, path: str, *, timeout: float = 60) -> bytes:
        """The tar ``docker cp CONTAINER:PATH -`` would write (for a regular file: that one file)."""
        from urllib.parse import quote

        status, _, body = self._api_request("GET", f"/containers/{quote(container)}/archive?path={quote(path)}",
                                        timeout=timeout)
        if status != 200:
            raise EngineError(f"cannot copy {path} out of container {container[:12]}: HTTP {status} "
                              f"{body.decode(errors='replace').strip()}")
        return body


@functools.cache
def registry_ca_env() -> dict[str, str]:
    """For buildx (Go): trust the per-registry CAs the engine trusts (``/etc/docker/certs.d/<host>/ca.crt``)
    on top of the system store, as the engine does, so a registry with a private CA needs one place only.
    Go reads SSL_CERT_DIR as a colon-separated list, and registry directories are named host:port, so the
    CAs are copied into a directory of their own, once per run (cached: every command asks). Empty when
    there are none."""
    import atexit
    import os
    import shutil
    import tempfile

    from .registry import DOCKER_CERTS_D

    try:
        cas = sorted(d / "ca.crt" for d in Path(DOCKER_CERTS_D).iterdir() if (d / "ca.crt").is_file())
    except OSError:
        return {}
    if not cas:
        return {}
    folder = tempfile.mkdtemp(prefix="crossdock-registry-cas-")
    atexit.register(shutil.rmtree, folder, True)
    for i, ca in enumerate(cas):
        shutil.copyfile(ca, os.path.join(folder, f"registry-{i}.crt"))
    system = os.environ.get("SSL_CERT_DIR") or "/etc/ssl/certs"
    return {"SSL_CERT_DIR": f"{system}:{folder}"}


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
