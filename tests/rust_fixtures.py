"""Rust projects for the real tier, generated in the test setup, with crates from Debian instead of crates.io.

crates.io is not reachable on these machines. Debian's ``librust-*-dev`` packages carry crate sources under
``/usr/share/cargo/registry``: the fixtures download the packages a crate needs (``apt-get download``, as
resolved by apt for ``apt-get install``: nothing is installed), unpack the sources into the project's
``vendor/`` and point its ``.cargo/config.toml`` at them, exactly as a user who ran ``cargo vendor`` has it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import git

ID = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]
CARGO_CONFIG = """[source.crates-io]
replace-with = "vendored"

[source.vendored]
directory = "vendor"
"""


def debian_crates(package: str, dest: Path) -> list[str]:
    """Unpack the crate sources that `apt-get install package` would bring into ``dest``; their names.

    Resolved against an empty dpkg status, as on a machine with nothing installed: what this machine happens
    to have (a librust-*-dev installed by hand) must not change what a test builds. (A name another package
    provides, such as librust-serde+derive-dev, is not itself installed: its provider is in the list.)"""
    with tempfile.TemporaryDirectory(prefix="crossdock-crates-") as tmp:
        empty = Path(tmp) / "status"
        empty.write_text("")
        sim = subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", "-o",
                              f"Dir::State::status={empty}", package], capture_output=True, text=True,
                             check=True).stdout
        names = [line.split()[1] for line in sim.splitlines() if line.startswith("Inst librust-")]
        subprocess.run(["apt-get", "download", "-qq", *names], cwd=tmp, check=True, capture_output=True)
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/x"], check=True)
        registry = Path(tmp) / "x" / "usr" / "share" / "cargo" / "registry"
        dest.mkdir(parents=True, exist_ok=True)
        crates = []
        for crate in sorted(registry.iterdir()):
            shutil.copytree(crate, dest / crate.name, symlinks=False, dirs_exist_ok=True)
            crates.append(crate.name)
    return crates


def vendor_debian_crates(project: Path, package: str) -> None:
    """The crates of Debian's ``package`` in the project's ``vendor/``, and its .cargo/config.toml pointing
    cargo at them (as after `cargo vendor`)."""
    (project / ".cargo").mkdir(exist_ok=True)
    (project / ".cargo" / "config.toml").write_text(CARGO_CONFIG)
    debian_crates(package, project / "vendor")


def commit(project: Path, *, tag: str | None = None) -> Path:
    (project / ".gitignore").write_text("target/\n")
    git(project, "init", "-q", "-b", "main")
    git(project, *ID, "add", "-A")
    git(project, *ID, "commit", "-q", "-m", "fixture")
    if tag:
        git(project, "tag", tag)
    return project


OPENSSL_MAIN = r'''//! Links the system's OpenSSL (libssl3t64 through pkg-config, not vendored): prints
//! OpenSSL's version and the SHA-256 of a fixed string, computed by OpenSSL.
fn main() {
    let digest = openssl::sha::sha256(b"crossdock");
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("{} {} ({}) {} sha256(crossdock)={hex}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"),
             std::env::consts::ARCH, openssl::version::version());
}
'''
CROSSDOCK_SHA256 = hashlib.sha256(b"crossdock").hexdigest()  # what the fixture must print


def openssl_project(dest: Path, *, runtime_packages: bool = True) -> Path:
    """A binary crate using the `openssl` crate, with its build and runtime packages in its metadata."""
    dest.mkdir(parents=True)
    runtime = 'runtime-packages = ["libssl3t64", "ca-certificates"]\n' if runtime_packages else ""  # trixie: t64
    (dest / "Cargo.toml").write_text(f"""[package]
name = "tls-probe"
version = "0.3.0"
edition = "2021"
publish = false

[dependencies]
openssl = "0.10"

[package.metadata.crossdock]
build-packages = ["libssl-dev"]
{runtime}smoke-expect = "{{version}} ({{arch}}) OpenSSL 3"
""")
    (dest / "src").mkdir()
    (dest / "src" / "main.rs").write_text(OPENSSL_MAIN)
    vendor_debian_crates(dest, "librust-openssl-dev")
    return commit(dest)


CLI_MAIN = r'''//! A command-line tool with no service and no crossdock metadata: `--version` prints name and version.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(word) => {
            println!("{}", word.chars().rev().collect::<String>());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("usage: rev-cli WORD | --version");
            ExitCode::from(2)
        }
    }
}
'''


def cli_project(dest: Path) -> Path:
    """A pure-Rust CLI with no crossdock metadata at all (the defaults must fit it)."""
    dest.mkdir(parents=True)
    (dest / "Cargo.toml").write_text('[package]\nname = "rev-cli"\nversion = "2.1.0"\nedition = "2021"\n'
                                     'publish = false\n')
    (dest / "src").mkdir()
    (dest / "src" / "main.rs").write_text(CLI_MAIN)
    return commit(dest)


TOOL_BUILD_RS = r'''// Runs a build tool of the build machine (from the project's build-tools) and bakes its answer in.
fn main() {
    let out = std::process::Command::new("jq").arg("--version").output().expect("jq is not installed");
    println!("cargo:rustc-env=JQ_VERSION={}", String::from_utf8_lossy(&out.stdout).trim());
}
'''


def build_tool_project(dest: Path, *, runtime_packages: str = "") -> Path:
    """A crate whose build script needs a tool of the build machine (jq) named in its build-tools."""
    dest.mkdir(parents=True)
    extra = f"runtime-packages = [{runtime_packages}]\n" if runtime_packages else ""
    (dest / "Cargo.toml").write_text('[package]\nname = "tool-user"\nversion = "1.0.0"\nedition = "2021"\n'
                                     'publish = false\n\n[package.metadata.crossdock]\nbuild-tools = ["jq"]\n'
                                     f'smoke-expect = "{{version}} built with jq-"\n{extra}')
    (dest / "build.rs").write_text(TOOL_BUILD_RS)
    (dest / "src").mkdir()
    (dest / "src" / "main.rs").write_text('fn main() {\n    println!("{} {} built with {}", env!("CARGO_PKG_NAME"), '
                                          'env!("CARGO_PKG_VERSION"), env!("JQ_VERSION"));\n}\n')
    return commit(dest)


def workspace_project(dest: Path) -> Path:
    """A virtual workspace: a library crate using a crate vendored from Debian (itoa), and the binary crate
    using the library. Its output names both crates' work: ``ws-app 42 MARK-0``."""
    (dest / "crates" / "numfmt" / "src").mkdir(parents=True)
    (dest / "crates" / "app" / "src").mkdir(parents=True)
    (dest / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["crates/*"]\n')
    (dest / "crates" / "numfmt" / "Cargo.toml").write_text(
        '[package]\nname = "numfmt"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
        '[dependencies]\nitoa = "1"\n')
    (dest / "crates" / "numfmt" / "src" / "lib.rs").write_text(
        "pub fn show(n: u64) -> String {\n    itoa::Buffer::new().format(n).to_string()\n}\n")
    (dest / "crates" / "app" / "Cargo.toml").write_text(
        '[package]\nname = "ws-app"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
        '[dependencies]\nnumfmt = { path = "../numfmt" }\n')
    (dest / "crates" / "app" / "src" / "main.rs").write_text(
        'fn main() {\n    println!("ws-app {} MARK-0", numfmt::show(42));\n}\n')
    vendor_debian_crates(dest, "librust-itoa-dev")
    return commit(dest)


DERIVE_MAIN = r'''//! Derives serde's traits (a proc-macro crate, serde_derive, and the build scripts of serde and
//! proc-macro2: the units a joint compile builds once for every target) and prints what it derived.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Reading {
    sensor: String,
    value: f64,
}

fn field_count<T: Serialize>(_: &T) -> usize {
    2
}

fn main() {
    let r = Reading { sensor: "t1".into(), value: 21.5 };
    println!("{} {} ({}) derived {} fields of {:?}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"),
             std::env::consts::ARCH, field_count(&r), r.clone());
}
'''


def derive_project(dest: Path, *, run: str) -> Path:
    """A binary crate deriving serde's traits, serde vendored from Debian. ``run`` goes into its description, so
    no dependency layer of an earlier run fits it (its compile is cold)."""
    dest.mkdir(parents=True)
    (dest / "Cargo.toml").write_text(f"""[package]
name = "derive-demo"
version = "0.1.0"
edition = "2021"
publish = false
description = "serde derive fixture ({run})"

[dependencies]
serde = {{ version = "1", features = ["derive"] }}
""")
    (dest / "src").mkdir()
    (dest / "src" / "main.rs").write_text(DERIVE_MAIN)
    vendor_debian_crates(dest, "librust-serde+serde-derive-dev")
    return commit(dest)


def target_features_project(dest: Path) -> Path:
    """A workspace whose library's feature ``fast`` only arm64's build turns on (a [target.'cfg(...)'
    .dependencies] entry): cargo would unify it into every target of a joint build. Prints whether it is on."""
    (dest / "feat" / "src").mkdir(parents=True)
    (dest / "app" / "src").mkdir(parents=True)
    (dest / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["app", "feat"]\n')
    (dest / "feat" / "Cargo.toml").write_text('[package]\nname = "feat"\nversion = "0.1.0"\nedition = "2021"\n'
                                              'publish = false\n\n[features]\nfast = []\n')
    (dest / "feat" / "src" / "lib.rs").write_text('pub fn mode() -> &\'static str {\n    if cfg!(feature = "fast") '
                                                  '{ "fast on" } else { "fast off" }\n}\n')
    (dest / "app" / "Cargo.toml").write_text(
        '[package]\nname = "feat-app"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
        '[dependencies]\nfeat = { path = "../feat" }\n\n'
        '[target.\'cfg(target_arch = "aarch64")\'.dependencies]\nfeat = { path = "../feat", features = ["fast"] }\n')
    (dest / "app" / "src" / "main.rs").write_text(
        'fn main() {\n    println!("feat-app {} {}", std::env::consts::ARCH, feat::mode());\n}\n')
    return commit(dest)
