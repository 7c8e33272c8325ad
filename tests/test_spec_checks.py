"""`inv smoke`'s checks of the image spec: the probe's output parsed, files and config compared. Pure."""

from __future__ import annotations

from tasks.core.spec_checks import (
    PROBE_PATH,
    check_config,
    check_files,
    parse_probe,
    probe_args,
    probe_create_argv,
)

SPEC = {"uid": 333, "gid": 333, "workdir": "/", "binaries": ["/depot"], "entrypoint": ["/start.sh"],
        "cmd": ["--listen", "0.0.0.0:8000"], "assets": [["/start.sh", "0755", "root"], ["/etc/d.toml", "0644", "user"]],
        "dirs": [["/data", "0755"]], "env": {"A": "1"}, "labels": {"title": "Depot"}, "ports": [8000],
        "volumes": ["/data"], "stop_signal": "SIGINT", "healthcheck": ["/depot", "--health"],
        "annotations": {"description": "d"}}

GOOD = """stat /depot 755 0 0 regular file
stat /start.sh 755 0 0 regular file
stat /etc/d.toml 644 333 333 regular file
stat /data 755 333 333 directory
writable /data
"""


def test_probe_arguments_list_every_path_then_the_directories():
    assert probe_args(SPEC) == ("/depot", "/start.sh", "/etc/d.toml", "/data", "--", "/data")
    argv = probe_create_argv(ref="r@sha256:x", platform="linux/arm64", args=("/a", "--"), name="n")
    assert argv[:2] == ("docker", "create") and argv[-2:] == ("/a", "--") and "-v" not in argv
    assert "--network" in argv and argv[argv.index("--entrypoint") + 1] == PROBE_PATH


def test_an_image_as_declared_passes_every_file_check():
    stats, writable = parse_probe(GOOD)
    checks = check_files(SPEC, stats, writable)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert [c.name for c in checks] == ["binary /depot", "asset /start.sh", "asset /etc/d.toml", "directory /data",
                                        "entrypoint file"]


def test_wrong_modes_owners_missing_files_and_unwritable_directories_are_named():
    text = GOOD.replace("stat /etc/d.toml 644 333 333", "stat /etc/d.toml 600 0 0").replace(
        "writable /data", "unwritable /data").replace("stat /start.sh 755 0 0 regular file", "missing /start.sh")
    checks = {c.name: c for c in check_files(SPEC, *parse_probe(text))}
    assert checks["asset /etc/d.toml"].detail == ("/etc/d.toml: mode 0600, the spec says 0644; owned by 0:0, the "
                                                  "spec says 333:333 (user)")
    assert not checks["asset /start.sh"].ok and "not in the image" in checks["asset /start.sh"].detail
    assert "user 333:333 cannot write into it" in checks["directory /data"].detail
    assert not checks["entrypoint file"].ok


def test_the_config_is_compared_with_the_spec():
    config = {"Entrypoint": ["/start.sh"], "Cmd": ["--listen", "0.0.0.0:8000"], "User": "333:333",
              "WorkingDir": "/", "Env": ["PATH=/usr/bin", "A=1"], "Labels": {"title": "Depot"},
              "ExposedPorts": {"8000/tcp": {}}, "Volumes": {"/data": {}}, "StopSignal": "SIGINT",
              "Healthcheck": {"Test": ["CMD", "/depot", "--health"]}}
    assert all(c.ok for c in check_config(SPEC, config, {"description": "d"}))
    wrong = {**config, "User": "0:0", "Env": ["A=2"], "ExposedPorts": {}, "Cmd": None}
    failed = {c.name: c.detail for c in check_config(SPEC, wrong, {}) if not c.ok}
    assert set(failed) == {"config user", "env A", "exposed ports", "config cmd", "annotation description"}
    assert failed["config user"] == "'0:0', the spec says '333:333'"


def test_an_empty_asset_is_a_regular_file():
    stats, writable = parse_probe(GOOD.replace("stat /etc/d.toml 644 333 333 regular file",
                                               "stat /etc/d.toml 644 333 333 regular empty file"))
    assert all(c.ok for c in check_files(SPEC, stats, writable))
