"""The dependency recipe (tasks/core/recipe.py): which files and stubs each cached compile layer is built from."""

from __future__ import annotations

import os
import tomllib

from tasks.core import buildx
from tasks.core.recipe import (
    StubTarget,
    package_directory,
    package_targets,
    path_dependencies,
    plan_recipe,
    probe_recipe,
    source_directories,
    write_recipe,
)

MAIN = "fn main() {}\n"


def toml(text: str) -> dict:
    return tomllib.loads(text)


def test_stub_sources_follow_the_target_kind():
    assert StubTarget("lib", "src/lib.rs").source == ""
    assert StubTarget("bin", "src/main.rs").source == MAIN
    assert StubTarget("build", "build.rs").source == MAIN
    assert StubTarget("example", "examples/x.rs").source == MAIN
    assert StubTarget("test", "tests/t.rs").source == ""  # libtest's harness brings main
    assert StubTarget("bench", "benches/b.rs", harness=False).source == MAIN


def test_single_package_stubs_its_binary_and_has_no_workspace_layer():
    manifests = {"": toml('[package]\nname = "app"\nversion = "1.0.0"\n')}
    files = ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/util.rs", "README.md", ".cargo/config.toml"]
    recipe = plan_recipe(files, manifests, built="")
    assert recipe.deps == {".cargo/config.toml": None, "Cargo.lock": None, "Cargo.toml": None, "src/main.rs": MAIN}
    assert recipe.workspace == ()


def test_lib_and_bins_build_script_and_declared_targets():
    manifest = toml("""
[package]
name = "tool"
version = "0.1.0"

[[bin]]
name = "extra"

[[bench]]
name = "speed"
harness = false

[[test]]
name = "it"

[[example]]
name = "demo"
path = "ex/demo.rs"
""")
    files = ["Cargo.toml", "build.rs", "src/lib.rs", "src/main.rs", "src/bin/extra.rs", "src/bin/multi/main.rs",
             "src/bin/multi/helper.rs", "benches/speed.rs", "tests/it/main.rs", "tests/auto.rs", "examples/auto.rs",
             "ex/demo.rs"]
    targets = {t.path: (t.kind, t.source) for t in package_targets(manifest, files)}
    assert targets == {
        "build.rs": ("build", MAIN),
        "src/lib.rs": ("lib", ""),
        "src/main.rs": ("bin", MAIN),
        "src/bin/extra.rs": ("bin", MAIN),
        "src/bin/multi/main.rs": ("bin", MAIN),
        "benches/speed.rs": ("bench", MAIN),  # harness = false: a main of its own
        "tests/it/main.rs": ("test", ""),  # declared without a path: where cargo finds it
        "ex/demo.rs": ("example", MAIN),
    }  # tests/auto.rs and examples/auto.rs: discovered by cargo only when present, never built by --bin


def test_explicit_paths_and_switched_off_discovery():
    manifest = toml('[package]\nname = "p"\nversion = "1.0.0"\nbuild = "tools/gen.rs"\nautobins = false\n\n'
                    '[lib]\npath = "lib/p.rs"\nproc-macro = true\n\n[[bin]]\nname = "p"\npath = "cli.rs"\n')
    files = ["tools/gen.rs", "lib/p.rs", "cli.rs", "src/main.rs", "build.rs"]
    assert {t.path: t.kind for t in package_targets(manifest, files)} == {
        "tools/gen.rs": "build", "lib/p.rs": "lib", "cli.rs": "bin"}
    no_build = toml('[package]\nname = "p"\nversion = "1.0.0"\nbuild = false\n')
    assert package_targets(no_build, ["build.rs", "src/lib.rs"]) == (StubTarget("lib", "src/lib.rs"),)


WORKSPACE = {
    "": toml('[workspace]\nmembers = ["crates/*"]\n'),
    "crates/app": toml('[package]\nname = "app"\nversion = "0.1.0"\n[dependencies]\ncore = { path = "../core" }\n'),
    "crates/core": toml('[package]\nname = "core"\nversion = "0.1.0"\n'),
}
WORKSPACE_FILES = ["Cargo.toml", "Cargo.lock", "README.md", ".cargo/config.toml",
                   "vendor/serde/Cargo.toml", "vendor/serde/src/lib.rs", "vendor/serde/.cargo-checksum.json",
                   "crates/app/Cargo.toml", "crates/app/src/main.rs", "crates/app/src/cli.rs",
                   "crates/core/Cargo.toml", "crates/core/src/lib.rs", "crates/core/src/parse.rs",
                   "crates/core/build.rs", "crates/core/data/table.txt"]


def test_workspace_deps_layer_stubs_every_local_crate_and_keeps_vendored_crates():
    recipe = plan_recipe(WORKSPACE_FILES, WORKSPACE, built="crates/app", vendor=["vendor"])
    assert recipe.deps == {
        ".cargo/config.toml": None, "Cargo.lock": None, "Cargo.toml": None,
        "crates/app/Cargo.toml": None, "crates/app/src/main.rs": MAIN,
        "crates/core/Cargo.toml": None, "crates/core/build.rs": MAIN, "crates/core/src/lib.rs": "",
        "vendor/serde/.cargo-checksum.json": None, "vendor/serde/Cargo.toml": None, "vendor/serde/src/lib.rs": None,
    }


def test_workspace_layer_holds_the_other_crates_real_sources_only():
    recipe = plan_recipe(WORKSPACE_FILES, WORKSPACE, built="crates/app", vendor=["vendor"])
    # the library crate as it is (stubs replaced, its other files added); not the shipped binary's crate
    # (a change there must not re-run this layer), not what the deps layer already has, not files of no package
    assert recipe.workspace == ("crates/core/build.rs", "crates/core/data/table.txt", "crates/core/src/lib.rs",
                                "crates/core/src/parse.rs")
    assert recipe.layer("workspace") == {f: None for f in recipe.workspace}


def test_root_package_shipping_the_binary_keeps_members_apart():
    manifests = {"": toml('[package]\nname = "app"\nversion = "1.0.0"\n[workspace]\nmembers = ["libs/x"]\n'),
                 "libs/x": toml('[package]\nname = "x"\nversion = "1.0.0"\n')}
    files = ["Cargo.toml", "src/main.rs", "docs/guide.md", "libs/x/Cargo.toml", "libs/x/src/lib.rs"]
    recipe = plan_recipe(files, manifests, built="")
    assert recipe.deps["src/main.rs"] == MAIN and recipe.deps["libs/x/src/lib.rs"] == ""
    assert recipe.workspace == ("libs/x/src/lib.rs",)  # the root package owns docs/ and src/: stubbed or left out
    assert package_directory(manifests, "x") == "libs/x" and package_directory(manifests, "") == ""


def test_path_dependencies_of_every_kind():
    manifest = toml("""
[dependencies]
a = { path = "../a" }
serde = "1"
[dev-dependencies]
b = { path = "b" }
[build-dependencies]
c = { path = "c", version = "1" }
[target.'cfg(unix)'.dependencies]
d = { path = "d" }
[workspace.dependencies]
e = { path = "crates/e" }
[patch.crates-io]
f = { path = "patched/f" }
""")
    assert sorted(path_dependencies(manifest)) == ["../a", "b", "c", "crates/e", "d", "patched/f"]


def test_source_directories_from_cargo_config():
    config = toml('[source.crates-io]\nreplace-with = "vendored"\n[source.vendored]\ndirectory = "third_party"\n')
    assert source_directories(config) == ["third_party"]


def test_probe_and_write_on_disk(tmp_path):
    root = tmp_path / "proj"
    for rel, text in {
        "Cargo.toml": '[workspace]\nmembers = ["app"]\n',
        "Cargo.lock": "version = 3\n",
        ".cargo/config.toml": '[source.crates-io]\nreplace-with = "v"\n[source.v]\ndirectory = "vendor"\n',
        "vendor/dep/Cargo.toml": '[package]\nname = "dep"\nversion = "1.0.0"\n',
        "vendor/dep/src/lib.rs": "pub fn f() {}\n",
        "app/Cargo.toml": ('[package]\nname = "app"\nversion = "0.1.0"\n'
                           '[dependencies]\nhelper = { path = "../helper" }\n'),
        "app/src/main.rs": "fn main() { helper::go() }\n",
        "helper/Cargo.toml": '[package]\nname = "helper"\nversion = "0.1.0"\n',  # a path dependency, not a member
        "helper/src/lib.rs": "pub fn go() {}\n",
        "helper/.env": "SECRET=1\n",
        "target/release/junk": "x",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    recipe = probe_recipe(root, package="app")
    assert recipe.deps["helper/src/lib.rs"] == "" and recipe.deps["vendor/dep/src/lib.rs"] is None
    assert recipe.workspace == ("helper/src/lib.rs",)
    (root / "target" / "crossdock" / "recipe" / "deps" / "stale.rs").parent.mkdir(parents=True)
    (root / "target" / "crossdock" / "recipe" / "deps" / "stale.rs").write_text("old")
    staged = write_recipe(root, recipe)
    assert (staged / "deps" / "app" / "src" / "main.rs").read_text() == MAIN
    assert (staged / "deps" / "vendor" / "dep" / "src" / "lib.rs").read_text() == "pub fn f() {}\n"
    assert os.path.samefile(staged / "deps" / "vendor" / "dep" / "src" / "lib.rs", root / "vendor/dep/src/lib.rs")
    assert (staged / "workspace" / "helper" / "src" / "lib.rs").read_text() == "pub fn go() {}\n"
    assert not (staged / "deps" / "stale.rs").exists()  # what an earlier build staged is gone
    every = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert not any(".env" in p or "junk" in p for p in every)


def test_dockerignore_sends_the_recipe_with_the_projects_rules_applied():
    lines = buildx.merge_dockerignore("secrets/\n!keep.txt\n# comment\n/*.pem\n").splitlines()
    recipe = "!target/crossdock/recipe"
    assert lines.index("**/target/*") < lines.index(recipe)
    for layer in ("deps", "workspace"):
        assert lines.index(recipe) < lines.index(f"target/crossdock/recipe/{layer}/secrets/")
        assert f"!target/crossdock/recipe/{layer}/keep.txt" in lines
        assert f"target/crossdock/recipe/{layer}/*.pem" in lines
    assert lines.index(recipe) < lines.index("**/.env")  # secrets stay out of the recipe too
