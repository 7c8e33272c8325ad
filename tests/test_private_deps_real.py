"""Private dependencies for real, every server on loopback and the test's own: a cargo sparse registry with
token authentication (`auth-required`), an sshd serving a git repository to the key an SSH agent holds, and
a git smart-HTTP server with basic authentication. A project needing the registry's crate and the SSH git
crate is released for amd64 and arm64 (the token from the environment, the agent forwarded: both only to the
compile steps), and the token and the private key are then searched for, byte for byte, in everything the
release left: every blob of the published index (layers, configs, the provenance attestations), the exported
registry build cache, `docker history`, the build logs, the reports, the SBOMs and the release record.
Without the token (or the agent) the build stops before anything is built, naming what to set.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import secrets
import socket
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import LOCAL_WORLD, REGISTRY, commit_all, manifest, registry_get, run_inv, unique_image

pytestmark = pytest.mark.real

CRATE, CRATE_VERSION = "secret-sauce", "1.2.0"
SAUCE = "sauce-from-the-private-registry"


def crate_file() -> bytes:
    """The .crate (a gzipped tar of <name>-<version>/), deterministic."""
    files = {
        "Cargo.toml": f'[package]\nname = "{CRATE}"\nversion = "{CRATE_VERSION}"\nedition = "2021"\n',
        "src/lib.rs": f'pub fn recipe() -> &\'static str {{\n    "{SAUCE}"\n}}\n',
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{CRATE}-{CRATE_VERSION}/{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class PrivateRegistry:
    """A cargo sparse registry on 127.0.0.1 that answers only requests carrying its token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.crate = crate_file()
        self.authorized = 0  # requests that carried the token
        self.refused = 0
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.headers.get("Authorization") != registry.token:
                    registry.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Cargo login_url="http://127.0.0.1/login"')
                    self.end_headers()
                    return
                registry.authorized += 1
                body = registry.serve(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.index = f"sparse+http://127.0.0.1:{self.port}/index/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, path: str) -> bytes | None:
        base = f"http://127.0.0.1:{self.port}"
        if path == "/index/config.json":
            return json.dumps({"dl": f"{base}/dl/{{crate}}/{{version}}", "api": base,
                               "auth-required": True}).encode()
        if path == f"/index/{CRATE[:2]}/{CRATE[2:4]}/{CRATE}":
            entry = {"name": CRATE, "vers": CRATE_VERSION, "deps": [], "features": {}, "yanked": False,
                     "cksum": hashlib.sha256(self.crate).hexdigest()}
            return (json.dumps(entry) + "\n").encode()
        if path == f"/dl/{CRATE}/{CRATE_VERSION}":
            return self.crate
        return None

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def private_registry():
    registry = PrivateRegistry(token="cio_" + secrets.token_hex(20))
    yield registry
    registry.close()


def private_project(dest: Path, *, registry: PrivateRegistry | None = None,
                    git_server: SshGitServer | GitHttpServer | None = None) -> Path:
    """A binary crate (tagged v0.1.0) needing the private registry's crate and/or the git server's crate: it
    prints what each says after its version line, and its smoke test expects that."""
    dest.mkdir(parents=True)
    deps, calls, words, packages = [], [], [], {}
    if registry:
        deps.append(f'{CRATE} = {{ version = "1.2", registry = "my-corp" }}')
        calls.append("secret_sauce::recipe()")
        words.append(SAUCE)
        packages[CRATE] = (f'version = "{CRATE_VERSION}"\nsource = "{registry.index}"\n'
                           f'checksum = "{hashlib.sha256(registry.crate).hexdigest()}"')
        (dest / ".cargo").mkdir()
        (dest / ".cargo" / "config.toml").write_text(f'[registries.my-corp]\nindex = "{registry.index}"\n')
    if git_server:
        deps.append(f'gitdep = {{ git = "{git_server.url}" }}')
        calls.append("gitdep::greeting()")
        words.append(GIT_WORDS)
        packages["gitdep"] = f'version = "0.3.0"\nsource = "git+{git_server.url}#{git_server.commit}"'
    (dest / "Cargo.toml").write_text(f"""[package]
name = "hello-private"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
{chr(10).join(sorted(deps))}

[profile.release]
strip = true

[package.metadata.crossdock]
smoke-expect = "{{version}} ({{arch}}-linux) {' '.join(words)}"
""")
    (dest / "src").mkdir()
    (dest / "src" / "main.rs").write_text(
        f'fn main() {{\n    println!("{{}} {{}} ({{}}-{{}}){" {}" * len(calls)}", env!("CARGO_PKG_NAME"), '
        f'env!("CARGO_PKG_VERSION"), std::env::consts::ARCH, std::env::consts::OS, {", ".join(calls)});\n}}\n')
    # As cargo writes it (with --locked it must not change): packages by name, dependencies sorted.
    packages["hello-private"] = 'version = "0.1.0"\ndependencies = [\n' + "".join(
        f' "{name}",\n' for name in sorted(packages)) + "]"
    (dest / "Cargo.lock").write_text("version = 3\n\n" + "\n\n".join(
        f'[[package]]\nname = "{name}"\n{body}' for name, body in sorted(packages.items())) + "\n")
    (dest / ".gitignore").write_text("target/\n")
    commit_all(dest, "private", tag="v0.1.0")
    return dest


def unpacked(blob: bytes) -> bytes:
    """A layer's bytes as the files hold them (gzip and zstd layers decompressed)."""
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout
    return blob


def every_blob(repo: str, ref: str) -> dict[str, bytes]:
    """Every manifest, config and layer (decompressed) reachable from repo:ref in the local registry."""
    found: dict[str, bytes] = {}
    todo = [ref]
    while todo:
        digest, doc = manifest(repo, todo.pop())
        if not digest or digest in found:
            continue
        found[digest] = json.dumps(doc).encode()
        # An index lists manifests; BuildKit's registry cache is an index whose entries are the layers and
        # its cache config (blobs, not manifests).
        entries = doc.get("manifests", [])
        todo += [m["digest"] for m in entries if "manifest" in m.get("mediaType", "")]
        blobs = [m for m in entries if "manifest" not in m.get("mediaType", "")]
        for blob in blobs + ([doc["config"]] if "config" in doc else []) + doc.get("layers", []):
            status, _, body = registry_get(f"/v2/{repo}/blobs/{blob['digest']}")
            assert status == 200, blob
            found[blob["digest"]] = unpacked(body)
    return found


def test_a_private_registry_and_ssh_git_release_and_no_secret_is_anywhere(engine, private_registry, ssh_git,
                                                                          tmp_path):
    """One project needing both private sources, released for amd64 and arm64: the token and the private key
    are searched for, byte for byte, in everything the release left."""
    token = private_registry.token
    project = private_project(tmp_path / "hello-private", registry=private_registry, git_server=ssh_git)
    image = unique_image("private")
    out = tmp_path / "out"
    env = {"CARGO_REGISTRIES_MY_CORP_TOKEN": token, "CROSSDOCK_BUILD_NETWORK": "host", "CROSSDOCK_CACHE": "on",
           "SSH_AUTH_SOCK": str(ssh_git.agent_sock), "CROSSDOCK_SSH_KNOWN_HOSTS": str(ssh_git.known_hosts)}
    r = run_inv("-f", str(LOCAL_WORLD), "release", "--platforms=amd64,arm64", f"--project={project}",
                f"--image={image}", f"--out-dir={out}", env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    assert private_registry.authorized >= 3  # config.json, the index entry, the download: all with the token
    smoke = json.loads((out / "smoke-report.json").read_text())
    runs = {p["platform"]: next(c["detail"] for c in p["checks"] if c["name"] == "run") for p in smoke["platforms"]}
    assert sorted(runs) == ["linux/amd64", "linux/arm64"]
    # each ran what the private crate and the git crate say
    assert all(SAUCE in detail and GIT_WORDS in detail for detail in runs.values()), runs
    sbom = json.dumps(json.loads((out / "sbom" / "arm64.cdx.json").read_text())["components"])
    assert CRATE in sbom and "gitdep" in sbom  # and the SBOM lists both

    # Byte for byte, nowhere: the printed output, every file the release wrote, every blob it published
    # (the image's layers and configs, the provenance attestations), the registry build cache, the history.
    needles = {"token": token.encode(), "private key": ssh_git.private_key_line.encode()}
    for what, needle in needles.items():
        assert needle.decode() not in r.stdout + r.stderr, what
    written = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in written) and (out / "releases" / "0.1.0.json").is_file()
    assert [(p, w) for p in written for w, n in needles.items() if n in p.read_bytes()] == []
    published = every_blob(image, "0.1.0")
    attestations = [d for d, body in published.items() if b"https://slsa.dev/provenance" in body]
    assert attestations, "no provenance attestation was published"
    cache = {**every_blob(image, "buildcache-amd64"), **every_blob(image, "buildcache-arm64")}
    assert len(cache) > 3, "no registry build cache was exported"
    assert [(d, w) for d, body in {**published, **cache}.items() for w, n in needles.items() if n in body] == []
    # The search sees inside them: the private crates' own strings are in the image's binary and in the cached
    # dependency layer (the compiled crates).
    for words in (SAUCE, GIT_WORDS):
        assert any(words.encode() in body for body in published.values()), words
        assert any(words.encode() in body for body in cache.values()), words
    ref = f"{REGISTRY}/{image}:0.1.0"
    subprocess.run(["docker", "pull", "-q", "--platform", "linux/arm64", ref], capture_output=True, check=True)
    history = subprocess.run(["docker", "history", "--no-trunc", ref], capture_output=True, text=True, check=True)
    assert history.stdout.strip() and all(n.decode() not in history.stdout for n in needles.values())
    # The build context never held them either (the token lives in the environment, the key in the agent).
    assert [p for p in project.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles.values())] == []


def test_without_the_token_the_build_stops_naming_the_registry_and_the_variable(engine, private_registry,
                                                                                tmp_path):
    project = private_project(tmp_path / "hello-private", registry=private_registry)
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                f"--image={unique_image('private-none')}", f"--out-dir={tmp_path / 'out'}",
                env={"CROSSDOCK_BUILD_NETWORK": "host"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"registry my-corp ({private_registry.index}) requires a token" in r.stderr
    assert "set CARGO_REGISTRIES_MY_CORP_TOKEN in the environment or .env" in r.stderr
    assert "build started" not in r.stdout and private_registry.authorized == 0


def test_setup_reports_each_private_registry_and_whether_its_token_is_here(engine, private_registry, tmp_path):
    project = private_project(tmp_path / "hello-private", registry=private_registry)
    without = run_inv("-f", str(LOCAL_WORLD), "setup", "--platforms=amd64", f"--project={project}")
    line = next(x for x in without.stdout.splitlines() if "private registry my-corp" in x)
    assert without.returncode == 1 and line.startswith("✗") and "CARGO_REGISTRIES_MY_CORP_TOKEN is not set" in line
    token = private_registry.token
    with_token = run_inv("-f", str(LOCAL_WORLD), "setup", "--platforms=amd64", f"--project={project}",
                         env={"CARGO_REGISTRIES_MY_CORP_TOKEN": token})
    line = next(x for x in with_token.stdout.splitlines() if "private registry my-corp" in x)
    assert with_token.returncode == 0, with_token.stdout + with_token.stderr
    assert line.startswith("✓") and "CARGO_REGISTRIES_MY_CORP_TOKEN is set" in line
    assert token not in with_token.stdout + with_token.stderr


GIT_WORDS = "words-from-the-private-git-dependency"


def crate_repository(root: Path) -> tuple[Path, str]:
    """A bare git repository of the crate `gitdep` under root: its path and commit."""
    work = root / "gitdep"
    (work / "src").mkdir(parents=True)
    (work / "Cargo.toml").write_text('[package]\nname = "gitdep"\nversion = "0.3.0"\nedition = "2021"\n')
    (work / "src" / "lib.rs").write_text(f'pub fn greeting() -> &\'static str {{\n    "{GIT_WORDS}"\n}}\n')
    commit = commit_all(work, "gitdep")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "gitdep.git")], check=True)
    return root / "gitdep.git", commit


class SshGitServer:
    """An sshd of the test's own on 127.0.0.1 (its own host key and authorized key, no password), serving a
    bare git repository of a crate, and an SSH agent holding the only key it accepts."""

    def __init__(self, root: Path) -> None:
        root.mkdir()
        self.root = root
        for name in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
        (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (root / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
AuthorizedKeysFile {root}/authorized_keys
PidFile {root}/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
""")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "sshd_config")],
                                     stderr=open(root / "sshd.log", "w"))
        self.agent_sock = root / "agent.sock"
        self.agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(self.agent_sock)], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if self.agent_sock.exists() and self._answers():
                break
            time.sleep(0.1)
        subprocess.run(["ssh-add", "-q", str(root / "user_key")], check=True, env=self.agent_env)
        host_key = (root / "host_key.pub").read_text().split()
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n")
        self.private_key_line = (root / "user_key").read_text().splitlines()[1]  # a line of the key's body
        self.url, self.commit = self._repository()

    @property
    def agent_env(self) -> dict[str, str]:
        return {**os.environ, "SSH_AUTH_SOCK": str(self.agent_sock)}

    def _answers(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def _repository(self) -> tuple[str, str]:
        bare, commit = crate_repository(self.root)
        return f"ssh://root@127.0.0.1:{self.port}{bare}", commit

    def close(self) -> None:
        for process in (self.sshd, self.agent):
            process.terminate()
            process.wait(timeout=10)




class GitHttpServer:
    """git's smart HTTP protocol on 127.0.0.1 (`git http-backend` behind a handler that demands HTTP basic
    authentication with one user and token), serving a bare repository of the crate."""

    def __init__(self, root: Path, user: str, token: str) -> None:
        root.mkdir()
        self.root, self.user, self.token = root, user, token
        bare, self.commit = crate_repository(root)
        self.authorized = 0
        expected = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.end_headers()
                    return
                owner.authorized += 1
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(owner.root), "GIT_HTTP_EXPORT_ALL": "1",
                       "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                       "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                       "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "REMOTE_USER": owner.user}
                out = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() != "status":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve  # noqa: N815 (http.server's names)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/{bare.name}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def credential(self) -> str:
        return f"http://{self.user}:{self.token}@127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def ssh_git(tmp_path):
    server = SshGitServer(tmp_path / "ssh")
    yield server
    server.close()


def test_a_git_dependency_over_ssh_builds_through_the_forwarded_agent(engine, ssh_git, tmp_path):
    project = private_project(tmp_path / "hello-gitdep", git_server=ssh_git)
    image = unique_image("gitdep")
    out = tmp_path / "out"
    env = {"SSH_AUTH_SOCK": str(ssh_git.agent_sock), "CROSSDOCK_BUILD_NETWORK": "host",
           "CROSSDOCK_SSH_KNOWN_HOSTS": str(ssh_git.known_hosts), "CROSSDOCK_CACHE": "on"}
    b = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                f"--image={image}", "--tag=ssh", f"--out-dir={out}", env=env)
    assert b.returncode == 0, b.stdout[-4000:] + b.stderr
    s = run_inv("-f", str(LOCAL_WORLD), "smoke", f"--out-dir={out}")
    assert s.returncode == 0, s.stdout[-3000:] + s.stderr
    smoke = json.loads((out / "smoke-report.json").read_text())
    assert all(GIT_WORDS in next(c["detail"] for c in p["checks"] if c["name"] == "run") for p in smoke["platforms"])
    # The key never left the agent: not in the output, the files written, the image, the cache.
    needle = ssh_git.private_key_line.encode()
    assert ssh_git.private_key_line not in b.stdout + b.stderr
    assert [p for p in out.rglob("*") if p.is_file() and needle in p.read_bytes()] == []
    blobs = {**every_blob(image, "ssh"), **every_blob(image, "buildcache-amd64"),
             **every_blob(image, "buildcache-arm64")}
    assert [d for d, body in blobs.items() if needle in body] == []
    assert any(GIT_WORDS.encode() in body for body in blobs.values())

    # Without the agent the build stops first, naming the host and what to start.
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64", f"--project={project}",
                f"--image={image}", "--tag=ssh", f"--out-dir={tmp_path / 'out2'}",
                env={**env, "SSH_AUTH_SOCK": ""})
    assert r.returncode == 1 and "git dependencies over SSH (127.0.0.1)" in r.stderr, r.stdout + r.stderr
    assert "build started" not in r.stdout


def test_a_git_dependency_over_https_with_a_token_builds_and_the_token_is_nowhere(engine, tmp_path):
    server = GitHttpServer(tmp_path / "web", user="ci", token="ghp_" + secrets.token_hex(18))
    try:
        project = private_project(tmp_path / "hello-gitdep", git_server=server)
        image = unique_image("gitweb")
        out = tmp_path / "out"
        env = {"CROSSDOCK_GIT_CREDENTIALS": server.credential, "CROSSDOCK_BUILD_NETWORK": "host"}
        b = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                    f"--image={image}", "--tag=web", f"--out-dir={out}", env=env)
        assert b.returncode == 0, b.stdout[-4000:] + b.stderr
        assert server.authorized >= 2  # the ref advertisement and the fetch, both with the token
        s = run_inv("-f", str(LOCAL_WORLD), "smoke", f"--out-dir={out}")
        assert s.returncode == 0, s.stdout[-3000:] + s.stderr
        needle = server.token.encode()
        assert server.token not in b.stdout + b.stderr + s.stdout + s.stderr
        assert [p for p in out.rglob("*") if p.is_file() and needle in p.read_bytes()] == []
        blobs = every_blob(image, "web")
        assert [d for d, body in blobs.items() if needle in body] == []
        assert any(GIT_WORDS.encode() in body for body in blobs.values())
        # A secret is no part of a cache key: the same build with another credential is all cache hits (the
        # fetching steps do not run again, so the server sees no request).
        asked = server.authorized
        again = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                        f"--image={image}", "--tag=web", f"--out-dir={tmp_path / 'again'}",
                        env={**env, "CROSSDOCK_GIT_CREDENTIALS": f"http://ci:other@127.0.0.1:{server.port}"})
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr
        assert server.authorized == asked
        log = (tmp_path / "again" / "build" / "arm64.log").read_text()
        assert "platform.sh build" in log and "cargo build" not in log  # the compile step was a cache hit
    finally:
        server.close()
