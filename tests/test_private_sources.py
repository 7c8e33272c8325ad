"""Private sources read from a project's .cargo/config.toml and Cargo.lock (pure)."""

from __future__ import annotations

from tasks.core.private_sources import (
    credential_lines,
    missing_credentials,
    parse_private_sources,
    token_env,
)

CONFIG = """
[registries.my-corp]
index = "sparse+http://127.0.0.1:8765/index/"

[registries.unused]
index = "sparse+https://crates.unused.example/"

[net]
git-fetch-with-cli = true
"""

LOCK = """
version = 3

[[package]]
name = "app"
version = "0.1.0"

[[package]]
name = "secret-sauce"
version = "1.2.0"
source = "sparse+http://127.0.0.1:8765/index/"
checksum = "00"

[[package]]
name = "gitdep"
version = "0.3.0"
source = "git+ssh://git@127.0.0.1:2222/srv/gitdep.git?branch=main#0123abcd"

[[package]]
name = "webdep"
version = "0.1.0"
source = "git+https://git.example.com/org/webdep.git#89ab"
"""


def test_registries_and_ssh_git_sources_are_read_from_config_and_lock():
    sources = parse_private_sources(CONFIG, LOCK)
    assert [(r.name, r.used, r.host) for r in sources.registries] == [
        ("my-corp", True, "127.0.0.1"), ("unused", False, "crates.unused.example")]
    assert [r.name for r in sources.used_registries] == ["my-corp"]
    assert [(g.url, g.host, g.port) for g in sources.ssh_git] == [("ssh://git@127.0.0.1:2222/srv/gitdep.git",
                                                                   "127.0.0.1", 2222)]
    assert [g.url for g in sources.https_git] == ["https://git.example.com/org/webdep.git"]
    assert sources.git_tools == ("git", "openssh-client")
    assert parse_private_sources("", "") == parse_private_sources("not [toml", "[[broken")
    assert parse_private_sources("", "").git_tools == ()


def test_cargo_token_variable_names():
    assert token_env("my-corp") == "CARGO_REGISTRIES_MY_CORP_TOKEN"
    assert token_env("internal") == "CARGO_REGISTRIES_INTERNAL_TOKEN"


def test_missing_credentials_name_the_registry_the_variable_and_the_agent():
    sources = parse_private_sources(CONFIG, LOCK)
    problems = missing_credentials(sources, {}, auth_required={"my-corp"}, agent=False)
    assert problems[0] == ("registry my-corp (sparse+http://127.0.0.1:8765/index/) requires a token: set "
                           "CARGO_REGISTRIES_MY_CORP_TOKEN in the environment or .env")
    assert "git dependencies over SSH (127.0.0.1)" in problems[1] and "SSH_AUTH_SOCK" in problems[1]
    assert missing_credentials(sources, {"CARGO_REGISTRIES_MY_CORP_TOKEN": "t"}, auth_required={"my-corp"},
                               agent=True) == []
    # A registry that does not require authentication needs no token.
    assert missing_credentials(sources, {}, auth_required=set(), agent=True) == []


def test_the_secret_file_carries_only_the_tokens_of_used_registries():
    environ = {"CARGO_REGISTRIES_MY_CORP_TOKEN": "s3cr3t", "CARGO_REGISTRIES_UNUSED_TOKEN": "other",
               "CARGO_REGISTRY_TOKEN": "cio"}
    assert credential_lines(parse_private_sources(CONFIG, LOCK), environ) == [
        "CARGO_REGISTRIES_MY_CORP_TOKEN=s3cr3t", "CARGO_REGISTRY_TOKEN=cio"]


def test_git_credential_lines_give_host_and_password():
    from tasks.core.private_sources import git_credential_entries

    store = ("https://ci:ghp_abc@git.example.com http://u:t0k@127.0.0.1:8080\nhttps://nologin.example.com "
             "https://ghp_alone@git.other.example")
    assert git_credential_entries(store) == [("git.example.com", "ghp_abc"), ("127.0.0.1:8080", "t0k"),
                                             ("git.other.example", "ghp_alone")]
