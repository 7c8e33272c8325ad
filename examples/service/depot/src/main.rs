//! depot: serves `GET /healthz` (200 while its data directory takes writes) and `GET /`.
//!
//! `depot --version` prints name, version, architecture, features and build mode; `depot --health` exits 0
//! when the data directory ($DEPOT_DATA, default ./data) takes a write (the image's HEALTHCHECK);
//! `depot [--listen ADDR]` serves.
use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn version_line() -> String {
    let features = if cfg!(feature = "metrics") { "metrics" } else { "no-metrics" };
    format!(
        "depot {VERSION} ({}-{}) {features} build={} checksum={:08x} crc={:08x}",
        env::consts::ARCH,
        env::consts::OS,
        depot_core::BUILD_MODE,
        depot_core::checksum(b"depot"),
        depot_core::crc(b"depot")
    )
}

fn data_dir() -> PathBuf {
    PathBuf::from(env::var("DEPOT_DATA").unwrap_or_else(|_| "./data".into()))
}

/// The data directory takes a write: a file created in its layers/ and removed again.
fn data_writable() -> bool {
    let probe = data_dir().join("layers").join(".depot-health");
    let ok = fs::write(&probe, b"ok").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

fn respond(request_line: &str) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some("/healthz")) if data_writable() => (200, "OK", "ok\n".to_string()),
        (Some("GET"), Some("/healthz")) => (503, "Service Unavailable", "data directory not writable\n".into()),
        (Some("GET"), Some("/")) => (200, "OK", format!("{}\n", version_line())),
        (Some("GET"), Some(_)) => (404, "Not Found", "not found\n".to_string()),
        _ => (405, "Method Not Allowed", "method not allowed\n".to_string()),
    }
}

fn handle(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let (code, reason, body) = respond(&request_line);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let mut listen = "0.0.0.0:8000".to_string();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--version" | "-V" => {
                println!("{}", version_line());
                return ExitCode::SUCCESS;
            }
            "--health" => return if data_writable() { ExitCode::SUCCESS } else { ExitCode::FAILURE },
            "--listen" if i + 1 < args.len() => {
                listen = args[i + 1].clone();
                i += 1;
            }
            other => {
                eprintln!("unknown argument {other:?}; usage: depot [--version] [--health] [--listen ADDR]");
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    if let Err(e) = fs::create_dir_all(data_dir().join("layers")) {
        eprintln!("depot: cannot use the data directory {}: {e}", data_dir().display());
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("depot: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("depot: listening on {listen}, data in {}", data_dir().display());
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            let _ = handle(stream);
        });
    }
    ExitCode::SUCCESS
}
