"""`inv build`'s decisions from probed facts: the request every platform's command is planned from. Pure."""

from __future__ import annotations

from pathlib import Path

from tasks.core import buildx
from tasks.core.build_plan import NO_ENGINE, EngineSide, ProjectFacts, cache_key, pin_base_images, plan_request
from tasks.core.capabilities import Features
from tasks.core.image import SpecInputs, plan_image_spec
from tasks.core.project import Package, Target
from tasks.core.revision import VcsInfo
from tasks.core.settings import resolve

VCS = VcsInfo(revision="abcdef1234567890", branch="main", commit_time=1700000000, dirty=False,
              head_tags=("v1.2.3",), remote_url="https://git.example/app")


def facts(tmp_path: Path) -> tuple:
    settings = resolve(cli={"project": str(tmp_path), "registry": "reg:5000", "tag": "t"}, cwd=tmp_path)
    target = Target(package=Package(name="app", version="1.2.3", directory=".", binaries=("app",)), bin="app",
                    cargo_package="")
    spec = plan_image_spec({"uid": 2000}, SpecInputs(bin="app", package_binaries=("app",), package_features=()))
    return settings, ProjectFacts(target=target, spec=spec, vcs=VCS)


def test_the_request_carries_the_facts_and_the_spec(tmp_path):
    settings, project = facts(tmp_path)
    side = EngineSide(driver="docker", features=Features(provenance="max", rewrite_timestamps=True),
                      pins={"RUNTIME_IMAGE": "debian:bookworm-slim@sha256:" + "1" * 64})
    request = plan_request(settings, project, side)
    assert request.repository == "reg:5000/app" and request.image is project.spec
    args = request.build_args
    assert (args["VERSION"], args["VCS_REF"], args["SOURCE_DATE_EPOCH"], args["APP_UID"]) == (
        "1.2.3", "abcdef1234567890", "1700000000", "2000")
    assert args["RUNTIME_IMAGE"].endswith("@sha256:" + "1" * 64) and args["CACHE_KEY"] == cache_key(tmp_path, "app")
    assert (request.provenance, request.rewrite_timestamps) == ("max", True)
    plan = buildx.plan_build(request)
    assert [a.platform.name for a in plan.arches] == [p.name for p in settings.platforms]


def test_a_dry_run_without_an_engine_plans_for_the_default_builder(tmp_path):
    settings, project = facts(tmp_path)
    request = plan_request(settings, project, NO_ENGINE)
    assert (request.driver, request.provenance, request.rewrite_timestamps) == ("docker", "off", False)
    assert "@" not in request.build_args["RUNTIME_IMAGE"]


def test_base_images_are_pinned_unless_given_by_digest_or_unreadable(tmp_path):
    pinned = "r@sha256:" + "2" * 64
    settings = resolve(cli={"project": str(tmp_path), "builder_image": "b:1", "runtime_image": pinned}, cwd=tmp_path)
    assert pin_base_images(settings, {"b:1": "sha256:" + "3" * 64}) == {"BUILDER_IMAGE": "b:1@sha256:" + "3" * 64}
    assert pin_base_images(settings, {}) == {}


def test_the_debian_release_of_an_image_and_a_mismatch_refused_naming_both():
    import pytest

    from tasks.core.build_plan import check_same_debian_release, debian_release
    from tasks.core.settings import SettingsError

    assert [debian_release(i) for i in ("docker.io/library/rust:1-bookworm", "debian:trixie-slim", "debian:12",
                                        "127.0.0.1:5000/crossdock/debian:bookworm@sha256:" + "1" * 64,
                                        "rust:1.94-trixie", "alpine:3", "registry/app:1.0")] == [
        "bookworm", "trixie", "bookworm", "bookworm", "trixie", "", ""]
    check_same_debian_release("rust:1-bookworm", "debian:bookworm-slim")
    check_same_debian_release("rust:1", "debian:trixie-slim")  # unknown: not refused (the README says why to match)
    with pytest.raises(SettingsError, match="rust:1-bookworm is Debian bookworm but the runtime image "
                                            "debian:trixie-slim is Debian trixie"):
        check_same_debian_release("rust:1-bookworm", "debian:trixie-slim")


def test_platforms_the_builder_cannot_compile_are_refused_before_anything_runs():
    import pytest

    from tasks.core.build_plan import check_toolchains, toolchain_problems
    from tasks.core.settings import SettingsError

    def settings(builder: str, platforms: str):
        return resolve(cli={"builder_image": builder, "runtime_image": "debian:trixie-slim", "platforms": platforms})

    assert toolchain_problems(settings("127.0.0.1:5000/crossdock/debian:trixie", "amd64,arm/v5,riscv64,s390x")) == {}
    assert toolchain_problems(settings("rust:1-bookworm", "arm/v6,arm/v5,riscv64")) == {}  # rustup: any target
    with pytest.raises(SettingsError) as e:
        check_toolchains(settings("127.0.0.1:5000/crossdock/debian:bookworm", "amd64,arm/v6,riscv64"))
    message = str(e.value)
    assert "crossdock/debian:bookworm cannot build every platform" in message
    assert "linux/arm/v6: Debian has no ARMv6 hard-float port" in message
    assert "linux/riscv64: Debian bookworm ships no Rust standard library for riscv64" in message
    assert "amd64" not in message.replace("crossdock", "")


def test_several_platforms_joined_here_get_one_cargo_unless_the_setting_or_no_join_says_otherwise(tmp_path):
    settings, project = facts(tmp_path)
    assert len(settings.platforms) > 1 and settings.joint_compile == "auto"
    assert plan_request(settings, project, NO_ENGINE).joint_targets == " ".join(
        p.docker.removeprefix("linux/") for p in settings.platforms)
    assert plan_request(settings, project, NO_ENGINE, join=False).joint_targets == ""  # one platform per CI job
    off = resolve(cli={"project": str(tmp_path), "joint_compile": "off"}, cwd=tmp_path)
    assert plan_request(off, project, NO_ENGINE).joint_targets == ""
    one = resolve(cli={"project": str(tmp_path), "platforms": "arm64"}, cwd=tmp_path)
    assert plan_request(one, project, NO_ENGINE).joint_targets == ""
    # how it compiles is no build argument: the report, the record, rebuilds and `inv merge` never see it
    assert not {"COMPILE", "TARGETS"} & set(plan_request(settings, project, NO_ENGINE).build_args)
