//! depot-ctl: the depot's second binary (an admin tool), shipped in the same image at /depot-ctl.
use std::env;

fn main() {
    if env::args().nth(1).as_deref() == Some("--version") {
        println!("depot-ctl {} ({}-{})", env!("CARGO_PKG_VERSION"), env::consts::ARCH, env::consts::OS);
    } else {
        println!("usage: depot-ctl --version");
    }
}
