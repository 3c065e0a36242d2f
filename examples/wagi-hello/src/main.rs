//! A WAGI (CGI over WASI) program for wasm32-wasip1, using only std.
//!
//! The request arrives as CGI environment variables (`REQUEST_METHOD`,
//! `PATH_INFO`, `QUERY_STRING`, ...) with the body on stdin; the response is
//! written to stdout as CGI headers, a blank line, then the body.
//!
//! * `POST /count`: reads stdin 64 KiB at a time as it streams in and
//!   answers `bytes=N sum=S` (S: the bytes' sum mod 2^32), holding nothing.
//! * `POST`/`PUT` elsewhere: `201 Created`, echoing the request body back as
//!   `application/octet-stream`.
//! * `GET /env`: every environment variable, `NAME=value` per line, sorted.
//! * anything else: a `text/plain` greeting naming the method, path, query
//!   and the `GREETING` variable.

use std::env;
use std::io::{self, Read, Write};

fn var(name: &str) -> String {
    env::var(name).unwrap_or_default()
}

fn main() -> io::Result<()> {
    let method = var("REQUEST_METHOD");
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let path = var("PATH_INFO");
    if method.eq_ignore_ascii_case("POST") && path == "/count" {
        let (mut bytes, mut sum) = (0u64, 0u32);
        let mut chunk = vec![0u8; 64 * 1024];
        let mut stdin = io::stdin().lock();
        loop {
            let n = stdin.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            sum = chunk[..n]
                .iter()
                .fold(sum, |s, &b| s.wrapping_add(u32::from(b)));
        }
        write!(out, "Content-Type: text/plain\n\nbytes={bytes} sum={sum}\n")?;
    } else if path == "/env" {
        let mut vars: Vec<(String, String)> = env::vars().collect();
        vars.sort();
        out.write_all(b"Content-Type: text/plain\n\n")?;
        for (name, value) in vars {
            writeln!(out, "{name}={value}")?;
        }
    } else if method.eq_ignore_ascii_case("POST") || method.eq_ignore_ascii_case("PUT") {
        let mut body = Vec::new();
        io::stdin().read_to_end(&mut body)?;
        out.write_all(b"Status: 201 Created\nContent-Type: application/octet-stream\n\n")?;
        out.write_all(&body)?;
    } else {
        let greeting = env::var("GREETING").unwrap_or_else(|_| "unset".to_string());
        write!(
            out,
            "Content-Type: text/plain\n\nHello from WAGI! method={method} path={} query={} GREETING={greeting}\n",
            var("PATH_INFO"),
            var("QUERY_STRING"),
        )?;
    }
    out.flush()
}
