//! A small, dependency-free HTTP service: the example crossdock cross-builds and smoke-tests.
//!
//! `hello-crossdock --version` prints its name, version and the architecture it was compiled for;
//! `hello-crossdock [--listen ADDR]` serves `GET /healthz` (200 "ok") and `GET /` (a greeting).

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

const NAME: &str = env!("CARGO_PKG_NAME");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn version_line() -> String {
    format!("{NAME} {VERSION} ({}-{})", env::consts::ARCH, env::consts::OS)
}

/// The response for one request line such as `GET /healthz HTTP/1.1`.
fn respond(request_line: &str) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some("/healthz")) => (200, "OK", "ok\n".to_string()),
        (Some("GET"), Some("/")) => (200, "OK", format!("hello from {}\n", version_line())),
        (Some("GET"), Some(_)) => (404, "Not Found", "not found\n".to_string()),
        _ => (405, "Method Not Allowed", "method not allowed\n".to_string()),
    }
}

fn handle(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers so the client sees a clean close.
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

fn usage() -> String {
    format!("usage: {NAME} [--version] [--listen ADDR]   (ADDR defaults to $LISTEN or 0.0.0.0:8080)")
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let mut listen = env::var("LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".to_string());
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--version" | "-V" => {
                println!("{}", version_line());
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            "--listen" if i + 1 < args.len() => {
                listen = args[i + 1].clone();
                i += 1;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{}", usage());
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{} listening on {listen}", version_line());
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            let _ = handle(stream);
        });
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::respond;

    #[test]
    fn healthz_is_ok() {
        assert_eq!(respond("GET /healthz HTTP/1.1\r\n").0, 200);
    }

    #[test]
    fn unknown_path_is_404_and_post_is_405() {
        assert_eq!(respond("GET /nope HTTP/1.1").0, 404);
        assert_eq!(respond("POST /healthz HTTP/1.1").0, 405);
    }
}
