//! The depot's core: a checksum in C (built by build.rs) and zlib's crc32, both linked for the target.
use std::os::raw::{c_uint, c_ulong};

extern "C" {
    fn depot_checksum(data: *const u8, len: usize) -> u32;
    fn crc32(crc: c_ulong, buf: *const u8, len: c_uint) -> c_ulong;
}

/// How the build script was configured (the project's build-env, never the image's environment).
pub const BUILD_MODE: &str = env!("DEPOT_BUILD_MODE");

pub fn checksum(data: &[u8]) -> u32 {
    unsafe { depot_checksum(data.as_ptr(), data.len()) }
}

pub fn crc(data: &[u8]) -> u64 {
    unsafe { crc32(0, data.as_ptr(), data.len() as c_uint) as u64 }
}
