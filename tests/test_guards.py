from __future__ import annotations

import pytest

from tasks.core.guards import ReleaseError, ReleaseState, check_release, published_from_here
from tasks.engine.registry import Repo, is_transient, plain_http

REV = "abcdef0123456789"


def state(**kw) -> ReleaseState:
    base = dict(head_tags=("v1.2.3",), dirty=False, cargo_version="1.2.3", revision=REV)
    base.update(kw)
    return ReleaseState(**base)


def test_a_clean_tagged_matching_commit_passes():
    assert str(check_release(state())) == "1.2.3"
    assert str(check_release(state(head_tags=("1.2.3",)))) == "1.2.3"  # bare tags work too
    assert str(check_release(state(head_tags=("r1.2.3",), tag_prefix="r"))) == "1.2.3"


@pytest.mark.parametrize("kw, message", [
    ({"head_tags": ()}, "is not tagged: tag the release commit, e.g. `git tag v1.2.3`"),
    ({"head_tags": ("v1.2",)}, "tag 'v1.2' on HEAD is not a valid version"),
    ({"head_tags": ("v1.2.4",)}, "the tag says 1.2.4 but Cargo.toml says 1.2.3"),
    ({"dirty": True}, "uncommitted changes"),
    ({"revision": ""}, "not in a git repository"),
    ({"head_tags": ("v1.2.3", "1.2.3")}, "several version tags"),
    ({"published_revisions": {"r/app": "f00d"}}, "already published from commit f00d"),
])
def test_each_guard_says_what_is_wrong_and_the_fix(kw, message):
    with pytest.raises(ReleaseError, match=message.replace("(", r"\(").replace("`", ".")):
        check_release(state(**kw))


def test_unrelated_tags_are_ignored():
    assert str(check_release(state(head_tags=("deployed-prod", "v1.2.3")))) == "1.2.3"


def test_republishing_the_same_commit_is_allowed_and_reuses():
    s = state(published_revisions={"r/a": REV, "r/b": ""})
    assert str(check_release(s)) == "1.2.3"
    assert published_from_here(s) == "r/a"
    assert published_from_here(state()) == ""


@pytest.mark.parametrize("message, transient", [
    ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
    ("unexpected status: 503 Service Unavailable", True),
    ("read: connection reset by peer", True),
    ("net/http: TLS handshake timeout", True),
    ("unexpected EOF", True),
    ("unexpected status: 401 Unauthorized", False),
    ("denied: requested access to the resource is denied", False),
    ("manifest unknown", False),
    ("failed to parse platform", False),
])
def test_only_transient_registry_errors_are_retried(message, transient):
    assert is_transient(message) is transient


@pytest.mark.parametrize("ref, host, name", [
    ("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000", "team/app"),
    ("127.0.0.1:5000/app@sha256:ab", "127.0.0.1:5000", "app"),
    ("ghcr.io/me/app", "ghcr.io", "me/app"),
    ("localhost/app", "localhost", "app"),
    ("debian:bookworm", "registry-1.docker.io", "library/debian"),
    ("me/app", "registry-1.docker.io", "me/app"),
])
def test_repo_parse(ref, host, name):
    r = Repo.parse(ref)
    assert (r.host, r.name) == (host, name)
    assert r.base.startswith("http://" if host.startswith(("127.", "localhost")) else "https://")


@pytest.mark.parametrize("host, plain", [
    ("127.0.0.1:5000", True), ("127.8.9.10", True), ("localhost", True), ("localhost:5000", True),
    ("[::1]:5000", True), ("localhost.evil.example", False), ("127.0.0.1.evil.example:80", False),
    ("ghcr.io", False), ("10.0.0.1:5000", False),
])
def test_only_this_machine_gets_plain_http(host, plain):
    assert plain_http(host) is plain


@pytest.mark.spawns  # a credential helper that does not exist
def test_docker_login_credentials_are_read_from_the_docker_config(tmp_path):
    import base64
    import json

    from tasks.engine.registry import docker_login

    auth = base64.b64encode(b"ci-user:s3cret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"reg.example:5000": {"auth": auth},
                                                                "https://index.docker.io/v1/": {"auth": auth}}}))
    assert docker_login("reg.example:5000", str(tmp_path)) == ("ci-user", "s3cret")
    assert docker_login("registry-1.docker.io", str(tmp_path)) == ("ci-user", "s3cret")
    assert docker_login("other.example", str(tmp_path)) is None
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "no-such-helper-crossdock"}))
    assert docker_login("reg.example:5000", str(tmp_path)) is None  # a missing helper is no crash
    assert docker_login("reg.example:5000", str(tmp_path / "nowhere")) is None
