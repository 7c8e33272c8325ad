"""What `inv setup` says the engine and builder can do, from the facts it reads. Pure."""

from __future__ import annotations

from tasks.core.capabilities import (
    CLASSIC_STORE,
    CONTAINERD_STORE,
    EngineFacts,
    capabilities,
    image_store,
    version_tuple,
)


def table(**facts) -> dict[str, bool]:
    base = dict(engine_version="20.10.24", buildkit_version="v0.8+unknown", driver="docker", image_store=CLASSIC_STORE)
    return {c.name: c.available for c in capabilities(EngineFacts(**{**base, **facts}))}


def test_docker_20_10_with_the_docker_driver_can_do_none_of_them():
    assert table() == {"push by digest": False, "multi-platform in one build": False,
                       "cache export (--cache-to)": False, "attestations (provenance)": False,
                       "timestamp rewriting": False, "annotations (--annotation)": False}
    fixes = [c.fix for c in capabilities(EngineFacts("20.10.24", "v0.8+unknown", "docker", CLASSIC_STORE))]
    assert all(fixes[1:]) and "docker-container" in fixes[0]


def test_docker_26_with_the_containerd_store():
    t = table(engine_version="26.1.5", buildkit_version="v0.13.2", image_store=CONTAINERD_STORE)
    assert t["multi-platform in one build"] and t["cache export (--cache-to)"] and t["attestations (provenance)"]
    assert t["timestamp rewriting"] and not t["push by digest"]


def test_a_docker_container_builder_can_do_everything_its_buildkit_can():
    assert all(table(driver="docker-container", buildkit_version="v0.16.0").values())
    assert not table(driver="docker-container", buildkit_version="v0.10.6")["attestations (provenance)"]


def test_image_store_and_versions_are_read_from_docker_info():
    assert image_store([["driver-type", "io.containerd.snapshotter.v1"]], "overlayfs") == CONTAINERD_STORE
    assert image_store([["Backing Filesystem", "extfs"]], "overlay2") == CLASSIC_STORE
    assert version_tuple("v0.13.2-rc1") == (0, 13, 2) and version_tuple("26.1.5+dfsg1") == (26, 1, 5)
    assert version_tuple("v0.8+unknown") == (0, 8, 0) and version_tuple("") == ()


def test_the_engine_release_names_the_buildkit_when_the_builder_does_not():
    from tasks.core.capabilities import buildkit_version

    assert buildkit_version("v0.0.0+unknown", "26.1.5+dfsg1", "docker").startswith("v0.13")
    assert buildkit_version("", "20.10.24+dfsg1", "docker").startswith("v0.8")
    assert buildkit_version("v0.16.0", "26.1.5", "docker") == "v0.16.0"
    assert buildkit_version("", "26.1.5", "docker-container") == ""  # another builder: only what it says


def test_auto_takes_what_the_engine_can_and_an_explicit_request_it_cannot_is_refused():
    import pytest

    from tasks.core.capabilities import CapabilityError, decide

    old = capabilities(EngineFacts("20.10.24", "v0.8", "docker", CLASSIC_STORE))
    new = capabilities(EngineFacts("26.1.5", "v0.13", "docker", CONTAINERD_STORE))
    f = decide(old, provenance="auto", reproducible="auto")
    assert (f.provenance, f.rewrite_timestamps) == ("off", False) and len(f.notes) == 2
    assert "containerd image store" in f.notes[0]
    f = decide(new, provenance="auto", reproducible="auto")
    assert (f.provenance, f.rewrite_timestamps, f.notes) == ("max", True, ())
    assert decide(new, provenance="min", reproducible="off").provenance == "min"
    with pytest.raises(CapabilityError, match="provenance=max: .*Fix: .*containerd"):
        decide(old, provenance="max", reproducible="off")
    with pytest.raises(CapabilityError, match="reproducible=on: .*BuildKit 0.13"):
        decide(old, provenance="off", reproducible="on")


def test_a_cache_asked_for_where_the_builder_cannot_export_one_is_refused_naming_the_fix():
    import pytest

    from tasks.core.capabilities import CapabilityError, require_cache_export

    classic = capabilities(EngineFacts("20.10.24", "v0.8", "docker", CLASSIC_STORE))
    with pytest.raises(CapabilityError) as e:
        require_cache_export(classic, cache="on")
    assert "cannot export a build cache" in str(e.value) and "containerd image store" in str(e.value)
    assert "docker-container" in str(e.value) and "set cache to off" in str(e.value)
    require_cache_export(classic, cache="off")  # nothing asked, nothing refused
    containerd = capabilities(EngineFacts("26.1.5", "v0.13.2", "docker", CONTAINERD_STORE))
    require_cache_export(containerd, cache="team/cache")


def test_annotations_need_buildkit_0_12_and_an_image_store_that_keeps_them():
    import pytest

    from tasks.core.capabilities import CapabilityError, require_annotations

    assert table(engine_version="26.1.5", buildkit_version="v0.13.2",
                 image_store=CONTAINERD_STORE)["annotations (--annotation)"]
    with pytest.raises(CapabilityError, match="cannot be written by this builder .* or move them to labels"):
        require_annotations(capabilities(EngineFacts("20.10.24", "v0.8+unknown", "docker", CLASSIC_STORE)))
