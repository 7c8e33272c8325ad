//! Builds the C part (csrc/checksum.c) with the target's C compiler and ar, and links zlib as pkg-config
//! describes it for the target: the tools and variables crossdock's platform.sh sets for a cross build
//! (CC_<target>, AR_<target>, PKG_CONFIG_LIBDIR_<target>), as the cc and pkg-config crates would read them.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn for_target(var: &str) -> Option<String> {
    let target = env::var("TARGET").ok()?;
    env::var(format!("{var}_{}", target.replace('-', "_"))).ok().or_else(|| env::var(var).ok())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = for_target("CC").unwrap_or_else(|| "cc".into());
    let ar = for_target("AR").unwrap_or_else(|| "ar".into());
    let obj = out.join("checksum.o");
    run(Command::new(&cc).args(["-c", "-O2", "-fPIC", "csrc/checksum.c", "-o"]).arg(&obj));
    run(Command::new(&ar).arg("rcs").arg(out.join("libchecksum.a")).arg(&obj));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=checksum");
    let mut pkg_config = Command::new("pkg-config");
    if let Some(dir) = for_target("PKG_CONFIG_LIBDIR") {
        pkg_config.env("PKG_CONFIG_LIBDIR", dir);
    }
    for flag in run(pkg_config.args(["--libs", "zlib"])).split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }
    let mode = env::var("DEPOT_BUILD_MODE").unwrap_or_else(|_| "online".into());
    println!("cargo:rustc-env=DEPOT_BUILD_MODE={mode}");
    println!("cargo:rerun-if-changed=csrc/checksum.c");
    println!("cargo:rerun-if-env-changed=DEPOT_BUILD_MODE");
}
