from __future__ import annotations

import pytest

from tasks.core.tags import VersionError, docker_tag, parse_semver, plan_tags, version_of_tag

SHA = "0123456789abcdef"


@pytest.mark.parametrize("text", ["1.2.3", "0.0.1", "1.3.0-rc.1", "1.0.0-alpha.beta.1", "1.2.3+build.5",
                                  "1.2.3-rc.1+exp.sha.5114f85"])
def test_valid_semver_round_trips(text):
    assert str(parse_semver(text)) == text


@pytest.mark.parametrize("text", ["1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3.4", "latest", ""])
def test_invalid_semver_is_refused_with_an_example(text):
    with pytest.raises(VersionError, match="e.g. 1.2.3"):
        parse_semver(text)


def test_precedence():
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
             "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    assert sorted(order, key=lambda v: parse_semver(v).key()) == order


def test_git_tags_with_and_without_prefix():
    assert str(version_of_tag("v1.2.3")) == "1.2.3"
    assert str(version_of_tag("1.2.3")) == "1.2.3"
    assert str(version_of_tag("release-1.2.3", prefix="release-")) == "1.2.3"
    assert version_of_tag("nightly") is None


def test_first_release_gets_every_tag():
    plan = plan_tags(parse_semver("1.2.3"), revision=SHA, existing=[])
    assert plan.tags == ("1.2.3", "sha-0123456", "1.2", "1", "latest")


def test_patch_of_an_old_line_does_not_move_major_or_latest():
    plan = plan_tags(parse_semver("1.1.5"), revision=SHA, existing=["1.2.0", "1.2", "1", "latest", "1.1.4"])
    assert plan.tags == ("1.1.5", "sha-0123456", "1.1")
    assert dict(plan.held_back) == {"1": "1.2.0 is newer", "latest": "1.2.0 is newer"}


def test_prerelease_gets_only_its_own_tag():
    plan = plan_tags(parse_semver("1.3.0-rc.1"), revision=SHA, existing=["1.2.0"])
    assert plan.tags == ("1.3.0-rc.1",)


def test_prereleases_in_the_registry_do_not_hold_back_a_release():
    plan = plan_tags(parse_semver("1.3.0"), revision=SHA, existing=["1.2.0", "1.3.0-rc.1", "2.0.0-beta.1"])
    assert plan.tags == ("1.3.0", "sha-0123456", "1.3", "1", "latest")


def test_rerelease_of_the_same_version_keeps_its_tags():
    plan = plan_tags(parse_semver("1.2.0"), revision=SHA, existing=["1.2.0", "1.1.0"])
    assert "latest" in plan.tags and "1" in plan.tags


def test_build_metadata_becomes_a_legal_tag():
    assert docker_tag(parse_semver("1.2.3+build.5")) == "1.2.3_build.5"
    assert plan_tags(parse_semver("1.2.3+b1"), revision=SHA, existing=[]).tags[0] == "1.2.3_b1"


def test_zero_x_release_gets_no_bare_major_tag():
    plan = plan_tags(parse_semver("0.3.1"), revision=SHA, existing=["0.3.0", "0.2.0", "0.3", "latest"])
    assert plan.tags == ("0.3.1", f"sha-{SHA[:7]}", "0.3", "latest")
    assert ("0", "a 0.x version gets no bare major tag") in plan.held_back
    old = plan_tags(parse_semver("0.2.5"), revision=SHA, existing=["0.3.1", "0.2.4"])
    assert old.tags == ("0.2.5", f"sha-{SHA[:7]}", "0.2")  # latest stays on 0.3.1
    assert "0" not in plan_tags(parse_semver("0.1.0"), revision=SHA, existing=[]).tags
