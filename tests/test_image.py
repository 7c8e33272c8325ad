"""The image spec: planned from the Cargo metadata and the settings, refused where it cannot work, and what
it becomes (the Dockerfile's image stage, the tree layout, build arguments, JSON). Pure, but for the asset
probe on a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.core.image import (
    APP_LINK,
    SPEC_LABEL,
    Asset,
    AssetSource,
    ImageSpec,
    ImageSpecError,
    SpecInputs,
    build_args,
    layout_text,
    plan_image_spec,
    probe_assets,
    render_image_stage,
    spec_label,
)

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "service"


def inputs(**over) -> SpecInputs:
    base = dict(bin="app", package_binaries=("app", "ctl"), package_features=("tls", "metrics"))
    return SpecInputs(**{**base, **over})


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_without_metadata_the_image_is_todays():
    spec = plan_image_spec({}, inputs(bin="hello", package_binaries=("hello",)))
    assert (spec.user, spec.uid, spec.gid, spec.workdir) == ("app", 10001, 10001, "/home/app")
    assert spec.entrypoint == (APP_LINK,) and spec.links == ((APP_LINK, "hello"),)
    assert [b.path for b in spec.binaries] == ["/usr/local/bin/hello"] and spec.ports == (8080,)
    args = build_args(spec)
    assert (args["BIN"], args["BINS"], args["LINKAGE"], args["APP_UID"], args["CARGO_FEATURES"]) == \
        ("hello", "", "dynamic", "10001", "")


def test_the_service_example_plans_everything_it_declares():
    import tomllib

    metadata = tomllib.loads((SERVICE / "Cargo.toml").read_text())["workspace"]["metadata"]["crossdock"]
    assets = probe_assets(SERVICE, "depot", metadata["assets"])
    spec = plan_image_spec(metadata, SpecInputs(bin="depot", package_binaries=("depot", "depot-ctl"),
                                                package_features=("default", "metrics"), port=8000, assets=assets,
                                                heads={"depot/start-depot.sh": b"#!/bin/sh\n"}))
    assert [(b.name, b.path) for b in spec.binaries] == [("depot", "/depot"), ("depot-ctl", "/depot-ctl")]
    assert {a.dest: (a.mode, a.owned_by_user) for a in spec.assets} == {
        "/start-depot.sh": (0o755, False), "/etc/depot/depot.toml": (0o644, True),
        "/install/self-cert/depot.pem": (0o644, False), "/install/self-cert/install-cert.sh": (0o755, False)}
    assert [(d.path, d.mode) for d in spec.dirs] == [("/data", 0o755), ("/data/layers", 0o755),
                                                      ("/data/scratch", 0o755), ("/certs", 0o700)]
    assert (spec.user, spec.uid, spec.gid, spec.workdir, spec.links) == ("depot", 333333, 333333, "/", ())
    assert spec.entrypoint == ("/start-depot.sh",) and spec.cmd == ("--listen", "0.0.0.0:8000")
    assert spec.cargo_feature_args() == ("--features=metrics",) and dict(spec.build_env) == {
        "DEPOT_BUILD_MODE": "offline"}
    assert ImageSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_the_rendered_stage_has_only_copy_and_config_and_the_projects_labels_win():
    spec = plan_image_spec({"labels": {"org.opencontainers.image.title": 'My "$HOME" svc'}, "env": {"A": "x y"},
                            "volumes": ["/data"], "stop-signal": "SIGINT", "healthcheck": ["/usr/local/bin/app"],
                            "cmd": ["--port", "8000"], "ports": [8000, 9090]}, inputs())
    stage = render_image_stage(spec)
    instructions = [line.split()[0] for line in stage.splitlines() if line and line[0].isupper()]
    assert "RUN" not in instructions and instructions[0] == "FROM"
    assert 'org.opencontainers.image.title="My \\"\\$HOME\\" svc"' in stage
    assert 'org.opencontainers.image.title="app"' not in stage  # crossdock's own title is replaced
    assert 'org.opencontainers.image.version="${VERSION}"' in stage  # crossdock's others stay
    assert 'ENV A="x y"' in stage and 'VOLUME ["/data"]' in stage and "EXPOSE 8000 9090" in stage
    assert "STOPSIGNAL SIGINT" in stage and 'HEALTHCHECK CMD ["/usr/local/bin/app"]' in stage
    assert 'CMD ["--port", "8000"]' in stage and "USER 10001:10001" in stage
    label = json.loads(spec_label(spec))
    assert f"LABEL {SPEC_LABEL}=" in stage and label["env"] == {"A": "x y"} and label["volumes"] == ["/data"]


def test_layout_lists_users_dirs_binaries_links_and_files(tmp_path):
    project(tmp_path, {"conf/a.toml": "", "conf/sub/b.toml": "", "run.sh": "#!/bin/sh\n"})
    metadata = {"assets": [["conf", "/etc/app", "640"], ["run.sh", "/run.sh", "755"]], "dirs": ["/data"],
                "owned-by-user": ["/etc/app/sub"], "entrypoint": ["/run.sh"], "bins": ["app", "ctl"]}
    spec = plan_image_spec(metadata, inputs(assets=probe_assets(tmp_path, ".", metadata["assets"]),
                                            heads={"run.sh": b"#!/bin/sh\n"}))
    assert layout_text(spec).splitlines() == [
        "user 10001 10001", "workdir /home/app", "dir 0755 /data", "bin app /usr/local/bin/app",
        "bin ctl /usr/local/bin/ctl", "file 0640 root /etc/app/a.toml", "file 0640 user /etc/app/sub/b.toml",
        "file 0755 root /run.sh"]
    assert build_args(spec)["BINS"] == "ctl"


def test_switching_slim_and_minimal_keeps_the_compile_the_same():
    slim, minimal = (plan_image_spec({}, inputs(runtime=r)) for r in ("slim", "minimal"))
    static = plan_image_spec({}, inputs(runtime="static"))
    compile_args = ("BIN", "BINS", "CARGO_FEATURES", "LINKAGE")
    assert [build_args(slim)[k] for k in compile_args] == [build_args(minimal)[k] for k in compile_args]
    assert build_args(static)["LINKAGE"] == "static"
    dockerfile = (SERVICE.parent.parent / "docker" / "Dockerfile").read_text()
    for stage in ("cook", "build"):
        body = dockerfile.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert "ARG RUNTIME" not in body.replace("ARG RUNTIME_", "") and "ARG LINKAGE" in body, stage


REFUSALS = [
    ("missing asset", {"assets": [["nope.txt", "/etc/x", "644"]]}, {}, "'nope.txt' does not exist"),
    ("asset outside", {"assets": [["../outside.txt", "/etc/x", "644"]]}, {}, "leads outside the project"),
    ("relative dest", {"assets": [["run.sh", "etc/run.sh", "755"]]}, {}, "is relative"),
    ("dest on the binary", {"assets": [["run.sh", "/usr/local/bin/app", "755"]]}, {}, "lands on binary app"),
    ("dest on a runtime file", {"assets": [["run.sh", "/etc/passwd", "644"]]}, {}, "a file crossdock writes"),
    ("interpreter the flavour lacks", {"assets": [["run.sh", "/run.sh", "755"]], "entrypoint": ["/run.sh"]},
     {"runtime": "minimal"}, "the minimal flavour has no shell"),
    ("bash-less slim interpreter", {"assets": [["py.sh", "/run.sh", "755"]], "entrypoint": ["/run.sh"]}, {},
     "which a slim Debian runtime lacks"),
    ("entrypoint nobody provides", {"entrypoint": ["/start.sh"]}, {}, "/start.sh is provided by no asset or binary"),
    ("not executable entrypoint", {"assets": [["run.sh", "/run.sh", "644"]], "entrypoint": ["/run.sh"]}, {},
     "is not executable"),
    ("uid 0", {"uid": 0}, {}, "would run as root"),
    ("unknown bin", {"bins": ["app", "server"]}, {}, "cargo builds no binary server"),
    ("unknown feature", {"features": ["tls", "gpu"]}, {}, "declares no feature gpu"),
    ("secret env", {"env": {"API_TOKEN": "x"}}, {}, "API_TOKEN looks like a secret"),
    ("secret build-env", {"build-env": {"CARGO_REGISTRY_TOKEN": "x"}}, {}, "looks like a secret"),
    ("bad mode", {"dirs": [["/data", "rwx"]]}, {}, "is not octal"),
    ("shell healthcheck", {"healthcheck": ["CMD-SHELL", "curl x"]}, {}, "exec form only"),
    ("dest on a system directory", {"assets": [["run.sh", "/etc", "644"]]}, {}, "a directory of the runtime itself"),
    ("a data directory on /usr/local/bin", {"dirs": ["/usr/local/bin"]}, {}, "a directory of the runtime itself"),
    ("under the merged /usr", {"bin-path": "/bin/app"}, {}, "which is a link to /usr/bin in the runtime"),
    ("inside a file", {"assets": [["run.sh", "/etc/app", "644"], ["py.sh", "/etc/app/x", "644"]]}, {},
     "is inside /etc/app"),
    ("a double slash", {"dirs": ["//etc/passwd"]}, {}, "is not a normal path"),
    ("a binary on the link", {"bins": ["ctl", "app"]}, {"bin": "ctl", "package_binaries": ("ctl", "app")},
     "would replace crossdock's link"),
    ("build-env that undoes the cross build", {"build-env": {"RUSTFLAGS": "-C opt-level=1"}}, {},
     "RUSTFLAGS is set by crossdock"),
    ("secret file in a directory asset", {"assets": [["conf", "/etc/app/", "644"]]}, {},
     "conf/.env is an .env file: crossdock never copies it"),
    ("absolute source", {"assets": [["/etc/passwd", "/etc/app/", "644"]]}, {}, "is absolute"),
]


@pytest.mark.parametrize(("name", "metadata", "over", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_key_and_the_fix(tmp_path, name, metadata, over, message):
    root = project(tmp_path / "p", {"run.sh": "#!/bin/bash\necho\n", "py.sh": "#!/usr/bin/env python3\n",
                                    "conf/app.toml": "", "conf/.env": "TOKEN=x\n"})
    (tmp_path / "outside.txt").write_text("x")
    assets = probe_assets(root, ".", metadata.get("assets"))
    heads = {"run.sh": b"#!/bin/bash\n", "py.sh": b"#!/usr/bin/env python3\n"}
    with pytest.raises(ImageSpecError, match="Cargo.toml \\[package.metadata.crossdock\\]") as e:
        plan_image_spec(metadata, inputs(assets=assets, heads=heads, **over))
    assert message in str(e.value)


def test_root_is_allowed_when_said_and_slim_takes_system_programs():
    spec = plan_image_spec({"uid": 0, "allow-root": True, "entrypoint": ["/bin/sh", "-c", "exec app"]}, inputs())
    assert spec.uid == 0 and spec.home == "/root" and spec.entrypoint[0] == "/bin/sh"


def test_unknown_keys_are_the_ones_neither_setting_nor_spec():
    from tasks.core.settings import unknown_metadata_keys

    assert [k for k, _ in unknown_metadata_keys({"health-path": "/", "workdir": "/", "workdri": "/"})] == ["workdri"]


def test_volumes_become_directories_of_the_user_and_assets_keep_root():
    spec = plan_image_spec({"volumes": ["/data"], "dirs": ["/var/cache/app"]}, inputs())
    assert [d.path for d in spec.dirs] == ["/data", "/var/cache/app"]
    assert Asset("a", "/b", 0o644).owned_by_user is False


def test_env_interpreters_and_plural_secret_names():
    heads = {"run.sh": b"#!/usr/bin/env bash\n"}
    source = (probe_assets(Path(__file__).parent, ".", None))
    assert source == ()
    spec = plan_image_spec({"entrypoint": ["/run.sh"]}, inputs(
        assets=(AssetSource(pattern="run.sh", dest="/run.sh", mode=0o755, files=(("run.sh", ""),)),), heads=heads))
    assert spec.entrypoint == ("/run.sh",)  # #!/usr/bin/env bash: the slim runtime's bash
    for name in ("API_KEYS", "APP_SECRETS", "AWS_CREDENTIALS", "DB_PASS", "GITHUB_TOKENS"):
        with pytest.raises(ImageSpecError, match="looks like a secret"):
            plan_image_spec({"env": {name: "x"}}, inputs())


def test_a_name_that_points_at_a_secret_is_no_secret():
    spec = plan_image_spec({"env": {"DB_PASSWORD_FILE": "/run/secrets/db", "KEYBOARD": "us"}}, inputs())
    assert dict(spec.env) == {"DB_PASSWORD_FILE": "/run/secrets/db", "KEYBOARD": "us"}


def test_the_unit_tier_refuses_to_start_a_process():
    import subprocess

    with pytest.raises(AssertionError, match="a unit-tier test started a process"):
        subprocess.run(["true"], check=False)
