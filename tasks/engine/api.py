"""The engine's HTTP API over its unix socket: used only where the docker CLI would talk to that same engine
(no remote DOCKER_HOST, the default context), to save a CLI start (``GET /info``) or to read one path of a
container (what ``docker cp`` asks). Anything else, or a socket that does not answer: the CLI instead."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import CrossdockError


class ApiError(CrossdockError):
    """The engine's API did not answer as asked."""


class EngineApi:
    def __init__(self) -> None:
        self._socket: str | None = None

    def socket(self) -> str:
        """The engine's unix socket, when it is the engine the docker CLI talks to (DOCKER_HOST unset or
        ``unix://``, no other context chosen) and it is there; '' otherwise (remote engines, contexts: then
        the smoke checks read a container's files with ``docker export`` instead)."""
        if self._socket is None:
            self._socket = find_socket()
        return self._socket

    def request(self, method: str, url: str, *, timeout: float) -> tuple[int, dict[str, str], bytes]:
        return self._request(method, url, timeout=timeout)


    def _request(self, method: str, url: str, *, timeout: float) -> tuple[int, dict[str, str], bytes]:
        """One request to the engine's API over its unix socket (``EngineError`` when it does not answer)."""
        import http.client
        import socket

        path = self.socket()
        if not path:
            raise ApiError("the engine's API socket is not available here")

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
            raise ApiError(f"the engine's API at {path} did not answer {method} {url}: {e}") from e
        finally:
            conn.close()

    def path_stat(self, container: str, path: str, *, timeout: float = 60) -> dict | None:
        """What ``docker cp`` learns about a path in a container before copying (the archive endpoint's
        HEAD): name, size, Go file mode and, for a link, its fully resolved target. Directories on the way
        are followed; the last component is not. None: no such path."""
        import base64
        import json
        from urllib.parse import quote

        status, headers, body = self._request("HEAD", f"/containers/{quote(container)}/archive?path={quote(path)}",
                                              timeout=timeout)
        if status == 404:
            return None
        header = headers.get("x-docker-container-path-stat", "")
        if status != 200 or not header:
            if status >= 500:  # a HEAD answer has no body: ask again for the engine's message (e.g. a link loop)
                status, _, body = self._request("GET", f"/containers/{quote(container)}/archive?path="
                                                           f"{quote(path)}", timeout=timeout)
            raise ApiError(f"cannot stat {path} in container {container[:12]}: HTTP {status} "
                              f"{body.decode(errors='replace').strip()}")
        return json.loads(base64.b64decode(header))

    def path_archive(self, container: str, path: str, *, timeout: float = 60) -> bytes:
        """The tar ``docker cp CONTAINER:PATH -`` would write (for a regular file: that one file)."""
        from urllib.parse import quote

        status, _, body = self._request("GET", f"/containers/{quote(container)}/archive?path={quote(path)}",
                                        timeout=timeout)
        if status != 200:
            raise ApiError(f"cannot copy {path} out of container {container[:12]}: HTTP {status} "
                              f"{body.decode(errors='replace').strip()}")
        return body

    def info(self) -> dict:
        """``GET /info`` (what ``docker info`` prints as JSON); {} when there is no socket or no answer."""
        if not self.socket():
            return {}
        try:
            status, _, body = self.request("GET", "/info", timeout=30)
        except ApiError:
            return {}
        try:
            data = json.loads(body.decode(errors="replace")) if status == 200 else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def find_socket() -> str:
    """The engine's unix socket, when it is the engine the docker CLI talks to (see EngineApi.socket)."""
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

