//! A WAGI (CGI over WASI) program for wasm32-wasip1, using only std.
//!
//! The request arrives as CGI environment variables (`REQUEST_METHOD`,
//! `PATH_INFO`, `QUERY_STRING`, ...) with the body on stdin; the response is
//! written to stdout as CGI headers, a blank line, then the body.
//!
//! * `POST`/`PUT`: `201 Created`, echoing the request body back as
//!   `application/octet-stream`.
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
    if method.eq_ignore_ascii_case("POST") || method.eq_ignore_ascii_case("PUT") {
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
