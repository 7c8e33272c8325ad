"""A small client of the registry HTTP API (distribution spec v2): tags, digests, labels; and which
registry errors are worth retrying.

Read-only. Anonymous, basic or bearer-token auth (the token flow of Docker Hub-style registries).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from dataclasses import dataclass

from ..core.errors import CrossdockError
from ..core.references import looks_like_domain, repository_of

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
TRANSIENT = re.compile(r"\b5\d\d\b|connection reset|connection refused|timed? ?out|timeout|\bEOF\b|"
                       r"temporar(y|ily)|unavailable|broken pipe|no route to host|TLS handshake", re.I)
PERMANENT = re.compile(r"\b40[134]\b|unauthori[sz]ed|denied|forbidden|not found|manifest unknown|"
                       r"name unknown|authentication required", re.I)


def is_transient(message: str) -> bool:
    """Worth retrying: 5xx, resets, refused connections, timeouts. Never 401/403/404 and their kin."""
    return bool(TRANSIENT.search(message)) and not PERMANENT.search(message)


def plain_http(host: str) -> bool:
    """Registries on this machine speak plain HTTP (as Docker assumes): localhost, 127.0.0.0/8, ::1."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


DOCKER_CERTS_D = "/etc/docker/certs.d"  # Docker's per-registry CA directory (<host:port>/ca.crt)


def registry_ca(host: str) -> str:
    """The CA certificate Docker uses for this registry (``/etc/docker/certs.d/<host>/ca.crt``), or ''."""
    import os

    path = os.path.join(DOCKER_CERTS_D, host, "ca.crt")
    return path if os.path.isfile(path) else ""


def tls_context(host: str):  # -> ssl.SSLContext | None
    """The system's trust store, plus the registry's own CA where Docker has one for it (a private CA)."""
    ca = registry_ca(host)
    if not ca:
        return None
    import ssl

    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca)
    return context


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def docker_login(host: str, config_dir: str | None = None) -> tuple[str, str] | None:
    """The Docker client's credentials for a registry, as `docker login` stored them: a credential helper
    (``credHelpers`` for the host, else ``credsStore``) or the base64 ``auth`` in ``auths``. None if none."""
    import os
    import subprocess
    from pathlib import Path

    folder = Path(config_dir or os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    keys = [host, f"https://{host}", f"http://{host}"] + (
        ["https://index.docker.io/v1/"] if host in ("registry-1.docker.io", "docker.io") else [])
    helper = next((config.get("credHelpers", {}).get(k) for k in keys if config.get("credHelpers", {}).get(k)),
                  config.get("credsStore"))
    if helper:
        for key in keys:
            try:
                r = subprocess.run([f"docker-credential-{helper}", "get"], input=key, capture_output=True, text=True,
                                   timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                break
            if r.returncode == 0:
                try:
                    found = json.loads(r.stdout)
                except ValueError:
                    continue
                if found.get("Username") and found.get("Secret") and found["Username"] != "<token>":
                    return found["Username"], found["Secret"]
    for key in keys:
        entry = (config.get("auths") or {}).get(key) or {}
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
            if user and password:
                return user, password
    return None


class RegistryError(CrossdockError):
    def __init__(self, message: str, *, status: int = 0):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Repo:
    host: str  # registry host[:port]
    name: str  # repository path

    @classmethod
    def parse(cls, ref: str) -> Repo:
        """``127.0.0.1:5000/team/app[:tag|@digest]`` -> host + name (Docker Hub names get docker.io)."""
        first, _, rest = repository_of(ref).partition("/")
        if rest and looks_like_domain(first) and first not in ("docker.io", "index.docker.io"):
            return cls(first, rest)
        if rest and looks_like_domain(first):  # Docker Hub's API host, official images under library/
            first, _, rest = rest.partition("/")
        return cls("registry-1.docker.io", f"{first}/{rest}" if rest else f"library/{first}")

    @property
    def root(self) -> str:
        return f"{'http' if plain_http(self.host) else 'https'}://{self.host}/v2/"

    @property
    def base(self) -> str:
        return f"{self.root}{self.name}"

    def __str__(self) -> str:
        return f"{self.host}/{self.name}"


class Client:
    def __init__(self, user: str = "", password: str = "", timeout: float = 10, *, docker_login: bool = True):
        """Explicit credentials (REGISTRY_USER / REGISTRY_PASSWORD) win; without them, a registry that asks
        for a login gets the Docker client's own (`docker login`: config.json ``auths`` or a credential
        helper), as CI jobs have them."""
        self._basic = basic_auth(user, password) if user else ""
        self._docker_login = docker_login and not user
        self._docker_basic: dict[str, str] = {}  # registry host -> Basic header from the Docker config
        self._tokens: dict[str, str] = {}  # bearer tokens by challenge (realm, service, scope)
        self.timeout = timeout

    def _basic_for(self, url: str) -> str:
        return self._basic or self._docker_basic.get(_host_of(url), "")

    def _try_docker_login(self, url: str) -> bool:
        """Look up the Docker client's login for the URL's registry once; True when one was found."""
        host = _host_of(url)
        if not self._docker_login or host in self._docker_basic:
            return False
        found = docker_login(host)
        self._docker_basic[host] = basic_auth(*found) if found else ""
        return bool(found)

    def _open(self, url: str, *, method: str = "GET", accept: str = "", auth: str = ""):
        import urllib.request  # here, not at import time: most runs of `inv` never talk to a registry

        req = urllib.request.Request(url, method=method)
        if accept:
            req.add_header("Accept", accept)
        if auth:  # never forwarded to a redirect target (blob downloads often redirect to storage)
            req.add_unredirected_header("Authorization", auth)
        return urllib.request.urlopen(req, timeout=self.timeout, context=tls_context(_host_of(url)))

    def _token(self, challenge: str, for_url: str) -> str:
        import urllib.error
        import urllib.parse

        if challenge in self._tokens:
            return self._tokens[challenge]
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        url = params.pop("realm", "") + "?" + urllib.parse.urlencode(params)
        try:
            with self._open(url, auth=self._basic_for(for_url)) as resp:
                data = json.load(resp)
        except urllib.error.HTTPError as e:
            raise RegistryError(f"the registry's token service refused the credentials: HTTP {e.code} "
                                f"{e.read()[:200]!r}", status=e.code) from None
        except (OSError, ValueError) as e:
            raise RegistryError(f"the registry's token service at {url.split('?')[0]}: {e}") from None
        self._tokens[challenge] = "Bearer " + (data.get("token") or data.get("access_token", ""))
        return self._tokens[challenge]

    def request(self, url: str, *, method: str = "GET", accept: str = "") -> tuple[int, dict[str, str], bytes]:
        import urllib.error

        auth = self._basic_for(url)
        for _ in range(4):
            try:
                with self._open(url, method=method, accept=accept, auth=auth) as resp:
                    return resp.status, dict(resp.headers), resp.read()
            except urllib.error.HTTPError as e:
                challenge = e.headers.get("WWW-Authenticate", "")
                if e.code == 401 and challenge.startswith("Bearer") and auth != self._tokens.get(challenge):
                    auth = self._token(challenge, url)  # tokens are scoped per repository: one per challenge
                    continue
                if e.code == 401 and self._try_docker_login(url):
                    self._tokens.clear()
                    auth = self._basic_for(url)  # Basic registries; Bearer ones get a token with it next round
                    continue
                return e.code, dict(e.headers), e.read()
            except OSError as e:
                raise RegistryError(f"{url}: {e}") from e
        return 401, {}, b""

    def check_login(self, repo_root: str) -> tuple[bool, str]:
        """Whether the credentials are accepted at ``https://host/v2/``, with the registry's answer."""
        status, _, body = self.request(repo_root)
        if status == 200:
            return True, "credentials accepted"
        try:
            error = (json.loads(body).get("errors") or [{}])[0]
            message = ": ".join(x for x in (error.get("code", ""), error.get("message", "")) if x)
        except (ValueError, AttributeError):
            message = body[:200].decode(errors="replace")
        return False, f"HTTP {status} {message}".strip()

    def tags(self, repo: Repo) -> list[str]:
        """Every tag of the repository, following the registry's pagination (Link: <...>; rel="next")."""
        import urllib.parse

        tags: list[str] = []
        url = f"{repo.base}/tags/list?n=1000"
        for _ in range(1000):  # bounded: at most a million tags
            status, headers, body = self.request(url)
            if status == 404:
                return tags
            if status != 200:
                raise RegistryError(f"listing tags of {repo}: HTTP {status} {body[:200]!r}", status=status)
            tags += json.loads(body).get("tags") or []
            link = {k.lower(): v for k, v in headers.items()}.get("link", "")
            m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
            if not m:
                return tags
            url = urllib.parse.urljoin(url, m.group(1))
        return tags

    def digest(self, repo: Repo, reference: str) -> str:
        """The digest a tag points at ('' when it does not exist)."""
        status, headers, _ = self.request(f"{repo.base}/manifests/{reference}", method="HEAD",
                                          accept=MANIFEST_TYPES)
        if status == 404:
            return ""
        if status != 200:
            raise RegistryError(f"resolving {repo.host}/{repo.name}:{reference}: HTTP {status}", status=status)
        return {k.lower(): v for k, v in headers.items()}.get("docker-content-digest", "")

    def manifest(self, repo: Repo, reference: str) -> dict:
        status, _, body = self.request(f"{repo.base}/manifests/{reference}", accept=MANIFEST_TYPES)
        if status != 200:
            raise RegistryError(f"reading {repo.host}/{repo.name}@{reference}: HTTP {status}", status=status)
        return json.loads(body)

    def labels(self, repo: Repo, reference: str) -> dict[str, str]:
        """Labels of an image (for an index: of its first platform's image)."""
        m = self.manifest(repo, reference)
        if "manifests" in m:
            m = self.manifest(repo, m["manifests"][0]["digest"])
        status, _, body = self.request(f"{repo.base}/blobs/{m['config']['digest']}")
        if status != 200:
            raise RegistryError(f"reading the config of {repo.host}/{repo.name}@{reference}: HTTP {status}",
                                status=status)
        return (json.loads(body).get("config") or {}).get("Labels") or {}
