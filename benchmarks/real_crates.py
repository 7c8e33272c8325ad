"""Benchmark workloads that look like real projects (issue 15): release profiles with ``lto = true`` and
``codegen-units = 1``, and an application built from real crates.

* ``heavy-lto``: the generated heavy workspace (benchmarks/workload.py) with that release profile: each
  arch ends in one long single-threaded LTO and codegen step.
* ``derive``: a small service on the derive-heavy crates a real one has (clap, serde, tokio's macros,
  tracing's attributes, thiserror: five proc-macro crates, syn, and the build scripts of serde, proc-macro2
  and others), default release profile: a large share of its compile is the host artifacts (issue 25).
* ``crates``: a small log-filter CLI on clap (derive), regex, serde (derive) and serde_json, with the same
  release profile. crates.io is not reachable here: the crates come from Debian's ``librust-*-dev`` packages,
  downloaded with apt and unpacked into the project's ``vendor/`` (tests/rust_fixtures.py), as a user who
  ran ``cargo vendor`` has them; cargo resolves them offline in the build.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from benchmarks.workload import generate

LTO_PROFILE = "lto = true\ncodegen-units = 1\n"
CRATES_BIN = "logfilter"
# Debian packages whose crates the application needs (feature packages bring the optional crates the
# features enable: regex's default features need aho-corasick, for one).
DEBIAN_PACKAGES = ("librust-clap-dev", "librust-clap-derive-dev", "librust-regex+default-dev",
                   "librust-serde-json-dev", "librust-serde+serde-derive-dev")

DERIVE_BIN = "sensord"
DERIVE_PACKAGES = (*DEBIAN_PACKAGES, "librust-tokio+macros-dev", "librust-tokio+rt-dev",
                   "librust-tracing+attributes-dev", "librust-thiserror-dev")

DERIVE_MAIN = r'''//! Reads sensor readings (JSON lines) and reports the ones above a threshold, on tokio, with tracing
//! spans and a derived error type: every derive and attribute macro a small real service uses.
use clap::Parser;
use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
#[command(name = "sensord", version, about = "Report sensor readings above a threshold")]
struct Args {
    /// Sensors whose name matches this pattern
    #[arg(long, default_value = ".")]
    sensor: String,
    /// Threshold
    #[arg(long, default_value_t = 0.0)]
    above: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Reading {
    sensor: String,
    value: f64,
    #[serde(default)]
    unit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("bad pattern: {0}")]
    Pattern(#[from] regex::Error),
    #[error("bad reading: {0}")]
    Reading(#[from] serde_json::Error),
}

#[tracing::instrument(skip(pattern))]
fn keep(pattern: &Regex, above: f64, line: &str) -> Result<Option<Reading>, Error> {
    let r: Reading = serde_json::from_str(line)?;
    Ok((pattern.is_match(&r.sensor) && r.value > above).then_some(r))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    if std::env::args().any(|a| a == "--version") {
        println!("sensord 0.1.0 ({}-linux)", std::env::consts::ARCH);
        return Ok(());
    }
    let args = Args::parse();
    let pattern = Regex::new(&args.sensor)?;
    let read = || std::io::stdin().lines().map_while(Result::ok).collect::<Vec<_>>();
    let lines = tokio::task::spawn_blocking(read).await.expect("stdin");
    for line in lines {
        if let Some(r) = keep(&pattern, args.above, &line)? {
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}
'''

CRATES_MAIN = r'''//! Reads JSON lines (one log record each) and prints the ones whose message matches a pattern.
use std::io::BufRead;

use clap::Parser;
use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(name = "logfilter", version, about = "Filter JSON log lines by a regular expression")]
struct Args {
    /// Pattern the message must match
    #[arg(default_value = ".")]
    pattern: String,
    /// Lowest level to keep (trace, debug, info, warn, error)
    #[arg(long, default_value = "info")]
    level: String,
}

#[derive(Debug, Deserialize, Serialize)]
struct Record {
    level: String,
    message: String,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
}

fn rank(level: &str) -> u8 {
    match level {
        "trace" => 0,
        "debug" => 1,
        "info" => 2,
        "warn" => 3,
        _ => 4,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--version") {
        println!("logfilter 0.1.0 ({}-linux)", std::env::consts::ARCH);
        return;
    }
    let args = Args::parse();
    let pattern = Regex::new(&args.pattern).expect("a valid regular expression");
    let stdin = std::io::stdin();
    for line in stdin.lock().lines().map_while(Result::ok) {
        if let Ok(record) = serde_json::from_str::<Record>(&line) {
            if rank(&record.level) >= rank(&args.level) && pattern.is_match(&record.message) {
                println!("{}", serde_json::to_string(&record).unwrap());
            }
        }
    }
}
'''


def lto_workspace(root: Path, *, items: int) -> Path:
    """The heavy workspace with a release profile of ``lto = true`` and ``codegen-units = 1``."""
    generate(root, items=items)
    manifest = root / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace("[profile.release]\n", "[profile.release]\n" + LTO_PROFILE))
    return root


def vendor(root: Path, vendor_cache: Path, packages: tuple[str, ...]) -> None:
    """The crates of Debian's ``packages`` in ``root/vendor`` (downloaded once into ``vendor_cache``), and the
    project's .cargo/config.toml pointing at them."""
    from tests.rust_fixtures import CARGO_CONFIG, debian_crates

    if not vendor_cache.is_dir():
        partial = vendor_cache.with_name(vendor_cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        for package in packages:
            debian_crates(package, partial)
        partial.rename(vendor_cache)
    (root / ".cargo").mkdir(parents=True, exist_ok=True)
    (root / ".cargo" / "config.toml").write_text(CARGO_CONFIG)
    shutil.copytree(vendor_cache, root / "vendor", dirs_exist_ok=True)


def derive_project(root: Path, *, vendor_cache: Path) -> Path:
    """The derive-heavy service with its crates vendored from Debian (downloaded once into ``vendor_cache``)."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text(
        f'[package]\nname = "{DERIVE_BIN}"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
        '[dependencies]\nclap = { version = "4", features = ["derive"] }\nregex = "1"\n'
        'serde = { version = "1", features = ["derive"] }\nserde_json = "1"\nthiserror = "1"\n'
        'tokio = { version = "1", features = ["macros", "rt"] }\ntracing = { version = "0.1", features = '
        '["attributes"] }\n')
    (root / "src" / "main.rs").write_text(DERIVE_MAIN)
    vendor(root, vendor_cache, DERIVE_PACKAGES)
    return root


def crates_project(root: Path, *, vendor_cache: Path) -> Path:
    """The log-filter application with its crates vendored from Debian (downloaded once into
    ``vendor_cache``)."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text(
        f'[package]\nname = "{CRATES_BIN}"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
        '[dependencies]\nclap = { version = "4", features = ["derive"] }\nregex = "1"\n'
        'serde = { version = "1", features = ["derive"] }\nserde_json = "1"\n\n'
        f"[profile.release]\nstrip = true\n{LTO_PROFILE}")
    (root / "src" / "main.rs").write_text(CRATES_MAIN)
    vendor(root, vendor_cache, DEBIAN_PACKAGES)
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("heavy-lto", "crates", "derive"))
    parser.add_argument("dest", type=Path)
    parser.add_argument("--items", type=int, default=30)
    args = parser.parse_args()
    if args.kind == "heavy-lto":
        print(lto_workspace(args.dest, items=args.items))
    elif args.kind == "derive":
        print(derive_project(args.dest, vendor_cache=args.dest.parent / "debian-derive-crates"))
    else:
        print(crates_project(args.dest, vendor_cache=args.dest.parent / "debian-crates"))
