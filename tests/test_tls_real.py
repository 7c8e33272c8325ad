"""A registry with TLS from a private CA, trusted the way Docker documents (/etc/docker/certs.d/<host>/ca.crt):
`inv setup` checks it, and build, smoke and release work against it."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import LOCAL_WORLD, run_inv, unique_image
from tests.test_release_real import release, versioned_project

pytestmark = pytest.mark.real

HOST = "registry.crossdock.test"
PORT = 5443
ADDRESS = f"{HOST}:{PORT}"
CERTS_D = Path("/etc/docker/certs.d") / ADDRESS
HOSTS_LINE = f"127.0.0.1 {HOST}  # crossdock test registry\n"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_registry(engine, tmp_path_factory):
    """A distribution registry on 127.0.0.1:5443 with a certificate for registry.crossdock.test from a CA of
    the test's own; the name resolves to loopback through /etc/hosts. Everything is undone afterwards."""
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=crossdock test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", f"/CN={HOST}", cwd=d)
    (d / "ext.cnf").write_text(f"subjectAltName=DNS:{HOST}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{PORT}\n  tls:\n    certificate: {d / 'server.crt'}\n    key: {d / 'server.key'}\n")
    hosts = Path("/etc/hosts")
    original = hosts.read_text()
    hosts.write_text(original + HOSTS_LINE)
    CERTS_D.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(d / "ca.crt", CERTS_D / "ca.crt")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):  # bounded wait: 50 x 0.2 s
            try:
                import ssl

                ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
                urllib.request.urlopen(f"https://{ADDRESS}/v2/", timeout=1, context=ctx)
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        else:
            raise RuntimeError(f"TLS registry on {ADDRESS} did not start")
        yield ADDRESS
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(CERTS_D, ignore_errors=True)
        hosts.write_text(hosts.read_text().replace(HOSTS_LINE, ""))


def test_setup_checks_the_tls_registry(tls_registry):
    r = run_inv("-f", str(LOCAL_WORLD), "setup", "--platforms=amd64", f"--registry={tls_registry}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "answers HTTP 200 over TLS (CA /etc/docker/certs.d/" in r.stdout
    line = next(line for line in r.stdout.splitlines() if f"TLS {tls_registry} for buildx" in line)
    assert line.startswith("✓") and "certificate verified" in line


def test_build_smoke_and_release_against_the_tls_registry(tls_registry, tmp_path):
    project = versioned_project(tmp_path, "8.0.0")
    image = unique_image("tls")
    out = tmp_path / "out"
    r = run_inv("-f", str(LOCAL_WORLD), "build", "--platforms=amd64,arm64", f"--project={project}",
                f"--registry={tls_registry}", f"--image={image}", "--tag=edge", f"--out-dir={out}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    s = run_inv("-f", str(LOCAL_WORLD), "smoke", f"--out-dir={out}")
    assert s.returncode == 0, s.stdout[-3000:] + s.stderr
    r = release(project, image, f"--registry={tls_registry}", "--platforms=amd64,arm64", out=tmp_path / "rel")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert f"published {tls_registry}/{image}:8.0.0" in r.stdout


def test_an_untrusted_certificate_is_named_with_the_fix(tls_registry, tmp_path):
    moved = CERTS_D.with_name(ADDRESS + ".off")
    CERTS_D.rename(moved)
    try:
        r = run_inv("-f", str(LOCAL_WORLD), "setup", "--platforms=amd64", f"--registry={tls_registry}")
    finally:
        moved.rename(CERTS_D)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "its TLS certificate is not trusted" in r.stderr and f"/etc/docker/certs.d/{tls_registry}/ca.crt" in r.stderr
