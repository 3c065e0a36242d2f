//! The hello-world wpaas app: `200 text/plain` greeting for any request.
//!
//! Prints nothing per request (it is used for benchmarks).

use wpaas_sdk::{anyhow, Request, Response};

fn handle(_req: Request) -> anyhow::Result<Response> {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "unset".to_string());
    Ok(Response::text(format!(
        "Hello from wpaas! (GREETING={greeting})\n"
    )))
}

wpaas_sdk::http_handler!(handle);

// Built as a binary so the output is `hello.wasm`; the host calls the
// `wasi:http/incoming-handler` export, never `main`.
fn main() {}
