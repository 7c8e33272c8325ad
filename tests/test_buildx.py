from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.core import buildx, references
from tasks.core.platforms import parse_platforms
from tests.conftest import compile_runs


def request(**overrides) -> buildx.BuildRequest:
    fields = dict(project=Path("/p"), platforms=parse_platforms("arm64,arm"), repository="reg:5000/app",
                  tag="t1", output="push", driver="docker", builder="", build_args={"BIN": "app", "VERSION": "1.0"},
                  run_dir=Path("/out/build"))
    fields.update(overrides)
    return buildx.BuildRequest(**fields)


def test_docker_driver_pushes_each_arch_under_a_staging_tag():
    plan = buildx.plan_build(request())
    arm64, arm = plan.arches
    assert arm64.argv == (
        "docker", "buildx", "build", "--platform", "linux/arm64", "--file", "/p/target/crossdock/Dockerfile",
        "--progress", "plain", "--provenance", "false", "--metadata-file", "/out/build/arm64.metadata.json",
        "--build-arg", "BIN=app", "--build-arg", "VERSION=1.0",
        "--tag", "reg:5000/app:staging-t1-arm64", "--push", "/p")
    assert arm.argv[4] == "linux/arm/v7" and "reg:5000/app:staging-t1-armv7" in arm.argv
    assert plan.manifest_ref == "reg:5000/app:t1"
    assert plan.notes and "cannot push by digest" in plan.notes[0]


@pytest.mark.parametrize("driver", sorted(buildx.PUSH_BY_DIGEST_DRIVERS))
def test_capable_drivers_push_by_digest_without_tags(driver):
    plan = buildx.plan_build(request(driver=driver, builder="multi"))
    argv = plan.arches[0].argv
    assert argv[:4] == ("docker", "buildx", "--builder", "multi")
    assert argv[-3:] == ("--output", "type=image,name=reg:5000/app,push-by-digest=true,name-canonical=true,"
                                     "push=true", "/p")
    assert "--tag" not in argv and plan.arches[0].tag == "" and not plan.notes


def test_load_mode_tags_each_arch_locally_and_makes_no_manifest_list():
    plan = buildx.plan_build(request(output="load"))
    assert [a.argv[-4:] for a in plan.arches] == [
        ("--tag", "reg:5000/app:t1-arm64", "--load", "/p"), ("--tag", "reg:5000/app:t1-armv7", "--load", "/p")]
    assert plan.manifest_ref == ""


def test_imagetools_joins_the_digests_in_platform_order():
    plan = buildx.plan_build(request())
    sources = buildx.imagetools_sources(plan, {"arm/v7": "sha256:bb", "arm64": "sha256:aa"})
    assert (plan.manifest_ref, sources) == ("reg:5000/app:t1", ("reg:5000/app@sha256:aa", "reg:5000/app@sha256:bb"))
    dry = buildx.imagetools_sources(plan, {})
    assert dry[-1] == "reg:5000/app@<digest of linux/arm/v7>"


def test_triples_come_from_the_table():
    arm5 = parse_platforms("arm/v5")
    for flavour in ("debian", "rustup"):
        assert buildx.plan_build(request(platforms=arm5, flavour=flavour)).arches[0].triple == \
            "armv5te-unknown-linux-gnueabi"


@pytest.mark.parametrize("image, flavour", [
    ("docker.io/library/rust:1-bookworm", "rustup"), ("rust@sha256:abc", "rustup"),
    ("127.0.0.1:5000/crossdock/debian:bookworm", "debian"), ("mirror.internal/debian:12", "debian"),
])
def test_flavour_of(image, flavour):
    assert buildx.flavour_of(image) == flavour


def test_repository():
    assert references.join_repository("127.0.0.1:5000/", "app") == "127.0.0.1:5000/app"
    assert references.join_repository("", "ghcr.io/me/app") == "ghcr.io/me/app"


def test_parse_metadata():
    assert buildx.parse_metadata(json.dumps({"containerimage.digest": "sha256:ab"})) == "sha256:ab"
    with pytest.raises(ValueError, match="no containerimage.digest"):
        buildx.parse_metadata("{}")


def test_parse_driver_and_manifest_digest():
    inspect = "Name:          default\nDriver:        docker\n\nNodes:\nName: default\n"
    assert buildx.parse_driver(inspect) == "docker"
    with pytest.raises(ValueError):
        buildx.parse_driver("Name: x\n")
    # sha256 of the exact bytes (no newline added): `printf '{}' | sha256sum`
    assert references.manifest_digest("{}") == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert references.manifest_digest("") == ""


def test_manifest_size_sums_config_and_layers():
    m = {"config": {"size": 10}, "layers": [{"size": 100}, {"size": 1000}]}
    assert references.manifest_size(json.dumps(m)) == 1110


def test_current_step_reads_the_last_named_step():
    log = "#1 [internal] load build definition\n#7 [toolchain 2/3] RUN x\n#7 0.1 output\n#9 [build 1/2] COPY\n"
    assert buildx.current_step(log) == "build 1/2"
    assert buildx.current_step("") == "starting"


def test_current_step_ignores_brackets_in_output_and_shows_cargo_progress():
    log = ("#9 [build 3/3] RUN crossdock-platform build\n"
           "#9 1.2 platform.sh: waiting for one of 1 compile slot(s) (COMPILE_SLOTS)\n")
    assert buildx.current_step(log) == "build 3/3: waiting for a compile slot"
    log += ("#9 9.0 platform.sh: got compile slot 0 after 8s\n"
            "#9 9.5    Compiling serde v1.0.200\n"
            "#9 12.1    Compiling hello v0.1.0 (/src)\n"
            "#9 12.3 warning: unused variable\n"
            "#9 12.3   |     let x: [u8] = ...\n"
            "#9 12.4 [u8]\n")
    assert buildx.current_step(log) == "build 3/3: compiling hello v0.1.0"
    assert buildx.current_step("#4 [runtime-base 1/1] FROM x\n#4 0.3 [u8]\n") == "runtime-base 1/1"
    tokens = ("#9 [build 3/3] RUN crossdock-platform build\n"
              "#9 0.3 platform.sh: waiting for a compile token (2 in all, COMPILE_TOKENS)\n")
    assert buildx.current_step(tokens) == "build 3/3: waiting for a compile token"


def test_merged_dockerignore_keeps_project_rules_and_ends_with_crossdock_rules():
    merged = buildx.merge_dockerignore("node_modules\n!.env\n")
    lines = merged.splitlines()
    assert lines.index("node_modules") < lines.index(".env")  # crossdock's rules come last and win
    assert lines.index("!.env") < lines.index("**/.env")
    assert lines[-6:] == [".git", "**/.git", ".env", "**/.env", ".env.*", "**/.env.*"]  # nothing re-admits them
    assert lines.index("!target/crossdock/image") < lines.index("**/.env")
    assert "target/*" in lines and ".git" in lines


def test_no_cache_is_passed_to_every_arch():
    plan = buildx.plan_build(request(no_cache=True))
    assert all("--no-cache" in a.argv for a in plan.arches)
    assert not any("--no-cache" in a.argv for a in buildx.plan_build(request()).arches)


def test_the_toolchain_used_comes_from_the_build_log():
    log = ("#18 60.08 platform.sh: cargo build --profile release --target armv5te-unknown-linux-gnueabi --bin app "
           "(flavour debian, linker arm-linux-gnueabi-gcc, target dir /cache/target/app-1/armv6)\n")
    assert buildx.built_with(log) == ("debian", "armv5te-unknown-linux-gnueabi")
    assert buildx.built_with("#18 CACHED\n") is None


def test_attestations_and_rewritten_timestamps_on_the_docker_driver_go_through_an_oci_export():
    plan = buildx.plan_build(request(provenance="max", rewrite_timestamps=True, repository="127.0.0.1:5000/app"))
    arm64 = plan.arches[0]
    assert ("--provenance", "mode=max") == arm64.argv[arm64.argv.index("--provenance"):][:2]
    assert "type=oci,dest=/out/build/arm64.oci.tar,rewrite-timestamp=true" in arm64.argv
    assert "--push" not in arm64.argv and arm64.archive == Path("/out/build/arm64.oci.tar")
    assert arm64.push_argv == ("skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--dest-tls-verify=false",
                               "oci-archive:/out/build/arm64.oci.tar", "docker://127.0.0.1:5000/app:staging-t1-arm64")
    assert "skopeo" in plan.notes[0]
    # a registry with TLS is verified (its CA from /etc/docker/certs.d, as for Docker)
    tls = buildx.plan_build(request(rewrite_timestamps=True, repository="registry.example.com:5443/app"))
    assert "--dest-tls-verify=false" not in tls.arches[0].push_argv


def test_a_builder_that_pushes_by_digest_rewrites_timestamps_in_its_own_exporter():
    plan = buildx.plan_build(request(driver="docker-container", rewrite_timestamps=True, provenance="min"))
    out = plan.arches[0].argv[plan.arches[0].argv.index("--output") + 1]
    assert out.endswith("push=true,rewrite-timestamp=true") and "push-by-digest=true" in out
    assert plan.arches[0].push_argv == () and "mode=min" in plan.arches[0].argv


def test_registry_cache_per_arch_imported_and_exported_with_every_layer():
    plan = buildx.plan_build(request(cache_repository="reg:5000/app"))
    for arch, suffix in zip(plan.arches, ("arm64", "armv7"), strict=True):
        argv = list(arch.argv)
        ref = f"reg:5000/app:buildcache-{suffix}"
        assert argv[argv.index("--cache-from") + 1] == f"type=registry,ref={ref}"
        assert argv[argv.index("--cache-to") + 1] == f"type=registry,ref={ref},mode=max,compression=zstd"
        assert argv.index("--cache-to") < argv.index(str(Path("/p")))  # options before the context
    assert not any("--cache-from" in a.argv or "--cache-to" in a.argv for a in buildx.plan_build(request()).arches)


def test_cache_setting_to_repository_and_export():
    def plan(setting: str, registry: str = "reg:5000") -> tuple[str, bool]:
        return buildx.plan_cache(setting, repository="reg:5000/app", registry=registry)

    assert plan("off") == ("", False)
    assert plan("on") == ("reg:5000/app", True)
    assert plan("read") == ("reg:5000/app", False)  # import only: a pull request cannot poison the cache
    assert plan("team/cache") == ("reg:5000/team/cache", True)
    assert plan("read:team/cache") == ("reg:5000/team/cache", False)
    assert plan("ghcr.io/team/cache") == ("ghcr.io/team/cache", True)
    assert plan("localhost:5000/c") == ("localhost:5000/c", True)
    assert plan("team/cache", registry="") == ("team/cache", True)
    arch = buildx.plan_build(request(cache_repository="reg:5000/app", cache_export=False)).arches[0]
    assert "--cache-from" in arch.argv and "--cache-to" not in arch.argv


def test_a_joint_plan_compiles_first_and_each_platform_takes_its_binaries_from_it():
    plan = buildx.plan_build(request(joint=True, cache_repository="reg:5000/app", no_cache=True,
                                     secret_args=("--ssh", "default")))
    joint = plan.joint
    assert joint is not None and joint.targets == "arm64 arm/v7"
    argv = joint.argv
    assert argv[argv.index("--target") + 1] == "joint-out" and "--platform" not in argv and "--no-cache" in argv
    # every platform's registry cache read, none written (the platforms' builds write it)
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--cache-from"] == [
        "type=registry,ref=reg:5000/app:buildcache-arm64", "type=registry,ref=reg:5000/app:buildcache-armv7"]
    assert "--cache-to" not in argv and ("--ssh", "default") == argv[-5:-3]
    assert argv[-3:] == ("--output", "type=local,dest=/out/build/joint", "/p")
    assert joint.declined == Path("/out/build/joint/per-platform") and joint.log_file == Path("/out/build/joint.log")
    for arch in plan.arches:
        assert arch.joint and "COMPILE=joint" in arch.argv and "TARGETS=arm64 arm/v7" in arch.argv
        assert "--no-cache" not in arch.argv  # (its compile ran without the cache just before)
        assert "--cache-to" in arch.argv
    # the way back when the joint compile declines: the plain per-platform commands
    assert plan.separate == buildx.plan_build(request(cache_repository="reg:5000/app", no_cache=True,
                                                      secret_args=("--ssh", "default"))).arches
    assert not any(a.joint for a in plan.separate)


def test_one_platform_or_no_joint_request_plans_no_joint_compile():
    for req in (request(joint=True, platforms=parse_platforms("arm64")), request()):
        plan = buildx.plan_build(req)
        assert plan.joint is None and plan.separate == () and not any(a.joint for a in plan.arches)
        assert not any("COMPILE=joint" in a.argv for a in plan.arches)


def test_a_joint_compile_log_names_each_platform_s_target():
    log = ("#14 0.2 platform.sh: cargo build --profile release --target x86_64-unknown-linux-gnu --target "
           "aarch64-unknown-linux-gnu --bin app --locked (flavour debian, linker x86_64-linux-gnu-gcc,"
           "aarch64-linux-gnu-gcc, target dir /cache/target/k/joint)\n")
    assert buildx.built_with(log, "aarch64-unknown-linux-gnu") == ("debian", "aarch64-unknown-linux-gnu")
    assert buildx.built_with(log, "riscv64gc-unknown-linux-gnu")[0] == "debian"
    assert buildx.built_with("#3 CACHED\n", "aarch64-unknown-linux-gnu") is None


def test_compiled_units_add_up_what_platform_sh_counted_in_every_step():
    log = ("#12 9.1 platform.sh: cook: compiled 30 unit(s) for the build machine (build scripts, proc-macros and "
           "their dependencies) and 45 for 3 target(s)\n"
           "#15 2.0 platform.sh: cook: compiled proc-macro serde_derive (build machine)\n"
           "#18 4.0 platform.sh: compiled 2 unit(s) for the build machine (build scripts, proc-macros and their "
           "dependencies) and 3 for 3 target(s)\n")
    assert buildx.compiled_units(log) == (32, 48)
    assert buildx.compiled_units("#3 CACHED\n") == (0, 0)


def test_a_project_without_private_sources_stages_compile_steps_without_secret_or_ssh_mounts():
    text = (Path(__file__).parents[1] / "docker" / "Dockerfile").read_text()
    runs = compile_runs(text)
    assert len(runs) == 6 and all("type=ssh" in r and "id=cargo-credentials" in r for r in runs)
    for network in ("default", "host"):
        kept = compile_runs(buildx.staged_dockerfile(text, network, private=True))
        assert all(r.count("type=secret") == 3 and "--mount=type=ssh" in r for r in kept)
        stripped = buildx.staged_dockerfile(text, network, private=False)
        bare = compile_runs(stripped)
        assert len(bare) == 6
        for run in bare:
            assert "type=secret" not in run and "type=ssh" not in run
            assert "id=crossdock-cargo-cache" in run and run.rstrip().endswith(("cook", "build"))
            assert run.startswith("RUN --network=host --mount=type=cache" if network == "host" else
                                  "RUN --mount=type=cache")
        # nothing else changes: the lines that are not the compile steps' RUNs are the same
        assert [line for line in stripped.splitlines() if "--mount" not in line and "platform.sh" not in line] == [
            line for line in buildx.staged_dockerfile(text, network).splitlines()
            if "--mount" not in line and "platform.sh" not in line]
