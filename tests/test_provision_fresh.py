"""The fresh machine (#10): scripts/provision-local.sh provisions from nothing, and says why when it cannot.

Real tier. The fresh path runs every step of the script with every path and port of its own (an empty
state dir, a registry on 127.0.0.1:5003, a plugin dir without buildx, a venv that does not exist yet),
builds and runs the example against that world, then stops and removes what it started. The machine's
own world (127.0.0.1:5000, /var/lib/crossdock) is not touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REGISTRY, SUITE, make_project, unique_image

pytestmark = pytest.mark.real

PROVISION = SUITE / "scripts" / "provision-local.sh"
ADDRESS = "127.0.0.1:5003"  # 5001: the auth_registry fixture; 5002: test_release_real
NOWHERE = "http://127.0.0.1:9/"  # the discard port: nothing listens there


def provision(*steps: str, env: dict[str, str], timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PROVISION), *steps], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout)


def answers(address: str) -> bool:
    try:
        urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def registries_of(state: Path) -> list[int]:
    """Pids of the registries serving the config in STATE (the script's registry step starts one)."""
    config = str(state / "registry" / "config.yml")
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and b"serve" in argv and config.encode() in argv:
            pids.append(int(proc.name))
    return pids


def stop_registry(state: Path) -> None:
    """Stop the registry the script started for STATE: by its pid file, and any other on that config."""
    pids = set(registries_of(state))
    pid_file = state / "registry" / "registry.pid"
    if pid_file.exists():
        pids.add(int(pid_file.read_text()))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for _ in range(50):  # bounded: 50 x 0.2 s
        if not registries_of(state) and not answers(ADDRESS):
            return
        time.sleep(0.2)
    raise AssertionError(f"the registry on {ADDRESS} (pids {sorted(pids)}) did not stop")


@pytest.fixture
def fresh(engine, tmp_path):
    """Every path and port of the script, fresh; afterwards the registry is stopped, the engine's images of
    that registry removed and the state deleted."""
    if answers(ADDRESS):
        pytest.fail(f"{ADDRESS} is already taken (a registry left by an earlier run?): the fresh world needs it")
    state = tmp_path / "state"
    state.mkdir()
    env = {"CROSSDOCK_STATE": str(state), "CROSSDOCK_LOCAL_REGISTRY": ADDRESS, "CROSSDOCK_BASE_ARCHES": "amd64",
           "CROSSDOCK_PLUGIN_DIR": str(tmp_path / "cli-plugins"), "CROSSDOCK_VENV": str(tmp_path / "venv")}
    yield env
    stop_registry(state)
    refs = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                          text=True, check=True).stdout.split()
    ours = [ref for ref in refs if ref.startswith(f"{ADDRESS}/")]
    if ours:
        subprocess.run(["docker", "image", "rm", "--force", *ours], capture_output=True, check=True)
    shutil.rmtree(state)


def test_provisions_from_empty_state_then_builds_and_runs_the_example(fresh, tmp_path):
    started = time.monotonic()
    r = provision(env=fresh)  # no step named: all of them, as the README's first command runs it
    provisioned = time.monotonic() - started
    assert r.returncode == 0, f"provisioning exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    plugin = Path(fresh["CROSSDOCK_PLUGIN_DIR"]) / "docker-buildx"
    assert f"installed in {plugin.parent}" in r.stdout and os.access(plugin, os.X_OK), r.stdout
    assert f"registry: starting on {ADDRESS}" in r.stdout
    for release in ("trixie", "bookworm"):  # both worlds, from the mirror
        assert f"mmdebstrap {release} for amd64" in r.stdout
        assert f"base image: {ADDRESS}/crossdock/debian:{release} (amd64)" in r.stdout
    venv = Path(fresh["CROSSDOCK_VENV"])
    assert f"venv: installing requirements.txt into {venv}" in r.stdout

    # Built through `inv` from the fresh venv, on the fresh base images, into the fresh registry.
    config = tmp_path / "fresh-world.yaml"
    config.write_text(f"crossdock:\n  builder_image: {ADDRESS}/crossdock/debian:trixie\n"
                      f"  runtime_image: {ADDRESS}/crossdock/debian:trixie\n  registry: {ADDRESS}\n")
    project = make_project(tmp_path / "hello")
    image = unique_image("fresh")
    b = subprocess.run([str(venv / "bin" / "python"), "-m", "invoke", "--search-root", str(SUITE), "-f", str(config),
                        "build", "--platforms=amd64", f"--project={project}", f"--image={image}", "--tag=fresh",
                        f"--out-dir={tmp_path / 'out'}"], capture_output=True, text=True, cwd=SUITE, timeout=1500)
    built = time.monotonic() - started - provisioned
    assert b.returncode == 0, b.stdout + b.stderr
    run = subprocess.run(["docker", "run", "--rm", f"{ADDRESS}/{image}:fresh", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("hello-crossdock 0.1.0 (x86_64-linux)"), run
    print(f"fresh provisioning {provisioned:.0f} s, build {built:.0f} s")


@pytest.mark.parametrize("epoch, where, failed", [
    # The mirror's InRelease gives the base images' timestamp: the first command that fails.
    ("", "step base-images failed: ", 'curl -fsS "$MIRROR/dists/$1/InRelease"'),
    # With the timestamp given, mmdebstrap itself fails, in the background job of the architecture.
    ("0", "step base-images: mmdebstrap failed for trixie amd64", "mmdebstrap --variant=minbase"),
])
def test_a_failing_step_exits_non_zero_naming_the_step_and_command(engine, tmp_path, epoch, where, failed):
    env = {"CROSSDOCK_STATE": str(tmp_path / "state"), "CROSSDOCK_LOCAL_REGISTRY": "127.0.0.1:9",
           "CROSSDOCK_BASE_ARCHES": "amd64", "CROSSDOCK_DEBIAN_MIRROR": NOWHERE,
           "CROSSDOCK_SOURCE_DATE_EPOCH": epoch}
    r = provision("base-images", env=env, timeout=300)
    assert r.returncode != 0, r.stdout + r.stderr
    assert where in r.stderr and failed in r.stderr, r.stderr
    if epoch:
        assert "rootfs bootstrap failed for: trixie/amd64" in r.stderr, r.stderr


SOURCES = """\
Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src deb
URIs:
 http://mirror.invalid/debian/
 http://second.invalid/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """\
# deb http://commented.invalid/debian bookworm main
deb-src http://source.invalid/debian bookworm main
deb [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://one.invalid/debian bookworm main
deb http://one.invalid/debian-security bookworm-security main
"""


@pytest.mark.parametrize("files, overrides, expected", [
    ({"sources.list.d/debian.sources": SOURCES}, {},
     "debian: http://mirror.invalid/debian\ndebian-security: http://mirror.invalid/debian-security\n"),
    ({"sources.list": ONE_LINE, "sources.list.d/other.sources.disabled": SOURCES}, {},
     "debian: http://one.invalid/debian\ndebian-security: http://one.invalid/debian-security\n"),
    ({"sources.list": ONE_LINE},
     {"CROSSDOCK_DEBIAN_MIRROR": "http://override.invalid/debian", "CROSSDOCK_DEBIAN_SECURITY_MIRROR": "none"},
     "debian: http://override.invalid/debian\ndebian-security: none\n"),
])
def test_the_mirror_is_the_one_the_machines_apt_uses(engine, tmp_path, files, overrides, expected):
    apt = tmp_path / "apt"
    for name, text in files.items():
        (apt / name).parent.mkdir(parents=True, exist_ok=True)
        (apt / name).write_text(text)
    env = {"CROSSDOCK_STATE": str(tmp_path / "state"), "CROSSDOCK_APT_SOURCES_DIR": str(apt),
           "CROSSDOCK_DEBIAN_MIRROR": "", "CROSSDOCK_DEBIAN_SECURITY_MIRROR": "", **overrides}
    r = provision("mirrors", env=env, timeout=60)
    assert r.returncode == 0 and r.stdout == expected, r.stdout + r.stderr


def test_no_mirror_and_no_override_is_a_clear_error(engine, tmp_path):
    (tmp_path / "apt" / "sources.list.d").mkdir(parents=True)
    env = {"CROSSDOCK_STATE": str(tmp_path / "state"), "CROSSDOCK_LOCAL_REGISTRY": "127.0.0.1:9",
           "CROSSDOCK_APT_SOURCES_DIR": str(tmp_path / "apt"), "CROSSDOCK_DEBIAN_MIRROR": ""}
    r = provision("base-images", env=env, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "step base-images: no Debian mirror: no enabled `deb` source for suite bookworm" in r.stderr
    assert "set CROSSDOCK_DEBIAN_MIRROR" in r.stderr


def test_registry_prune_drops_earlier_runs_test_images_and_keeps_the_rest(fresh, tmp_path):
    """`registry-prune` (scripts/test.sh runs it): test/ repositories older than 2 h go, with their blobs;
    newer ones and other repositories stay whole, and the registry answers again."""
    assert provision("registry", env=fresh, timeout=120).returncode == 0
    first = provision("registry-prune", env=fresh, timeout=120)  # a new machine: nothing pushed yet
    assert first.returncode == 0 and "registry-prune: no test/ repository in" in first.stdout, first.stderr
    main = f"{REGISTRY}/crossdock/debian"  # the machine's own base images, per arch
    for name, source in (("test/old", "bookworm-arm64"), ("test/new", "bookworm-amd64"),
                         ("keep/base", "bookworm-amd64")):
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                        f"docker://{main}:{source}", f"docker://{ADDRESS}/{name}:1"], check=True, timeout=300)
    storage = Path(fresh["CROSSDOCK_STATE"]) / "registry" / "data" / "docker" / "registry" / "v2"
    hours_ago = time.time() - 3 * 3600
    os.utime(storage / "repositories" / "test" / "old", (hours_ago, hours_ago))
    blobs_before = len(list((storage / "blobs").rglob("data")))

    r = provision("registry-prune", env=fresh, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "registry-prune: removed 1 test/ repositories" in r.stdout and answers(ADDRESS)
    assert len(list((storage / "blobs").rglob("data"))) < blobs_before  # the arm64 layers were only test/old's
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(f"http://{ADDRESS}/v2/test/old/tags/list", timeout=10)
    assert gone.value.code == 404
    for name in ("test/new", "keep/base"):  # every blob still readable
        copied = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                 f"docker://{ADDRESS}/{name}:1", f"dir:{tmp_path / name.replace('/', '-')}"],
                                capture_output=True, text=True, timeout=300)
        assert copied.returncode == 0, copied.stderr
    again = provision("registry-prune", env=fresh, timeout=120)
    assert again.returncode == 0 and "no test/ repository older than 2 h" in again.stdout
