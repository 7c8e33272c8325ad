"""`inv merge`'s checks of per-arch reports made on other machines. Pure."""

from __future__ import annotations

import pytest

from tasks.core.platforms import parse_platforms
from tasks.core.report import MergeError, plan_merge

SETTINGS = {"BIN": "app", "RUNTIME": "slim", "VERSION": "1.0.0"}
IMAGE = {"bin": "app", "uid": 10001, "gid": 10001, "entrypoint": ["/usr/local/bin/app"]}


def report(*platforms: str, revision: str = "abc", ok: bool = True, **over) -> dict:
    base = {"ok": ok, "revision": revision, "repository": "reg:5000/app", "tag": "1.0.0", "output": "push",
            "settings": dict(SETTINGS), "image": dict(IMAGE), "version": "1.0.0",
            "platforms": [{"platform": p, "name": p.split("/", 1)[1], "ok": ok,
                           "digest": f"sha256:{i}{'0' * 63}" if ok else "", "error": "" if ok else "cargo failed"}
                          for i, p in enumerate(platforms, start=len(platforms[0]))]}
    return {**base, **over}


def test_reports_of_the_same_build_join_in_the_requested_order():
    plan = plan_merge([("amd.json", report("linux/amd64")), ("arm.json", report("linux/arm64"))],
                      parse_platforms("arm64,amd64"))
    assert (plan.repository, plan.tag) == ("reg:5000/app", "1.0.0")
    assert [p["platform"] for p in plan.platforms] == ["linux/arm64", "linux/amd64"]


@pytest.mark.parametrize("second, message", [
    (report("linux/arm64", revision="def"), "differ in commit: 'abc' vs 'def'"),
    (report("linux/arm64", tag="2.0.0"), "differ in tag"),
    (report("linux/arm64", repository="reg:5000/other"), "differ in repository"),
    (report("linux/arm64", settings={**SETTINGS, "RUNTIME": "minimal"}), "differ in image settings: RUNTIME"),
    (report("linux/arm64", image={**IMAGE, "uid": 2000}), "differ in image spec: uid"),
    (report("linux/arm64", ok=False), "linux/arm64 failed in b.json: cargo failed"),
    (report("linux/amd64"), "linux/amd64 is in both a.json and b.json"),
    (report("linux/s390x"), "linux/s390x is not among the platforms to join"),
])
def test_reports_that_do_not_agree_are_refused(second, message):
    with pytest.raises(MergeError, match="nothing was tagged") as e:
        plan_merge([("a.json", report("linux/amd64")), ("b.json", second)], parse_platforms("amd64,arm64"))
    assert message in str(e.value)


def test_a_missing_platform_or_no_report_is_refused():
    with pytest.raises(MergeError, match="no report has linux/arm64"):
        plan_merge([("a.json", report("linux/amd64"))], parse_platforms("amd64,arm64"))
    with pytest.raises(MergeError, match="no build reports given"):
        plan_merge([], parse_platforms("amd64"))
    with pytest.raises(MergeError, match="only pushed arches can be joined"):
        plan_merge([("a.json", report("linux/amd64", output="load"))], parse_platforms("amd64"))
