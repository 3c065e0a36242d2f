//! {{name}}: a wpaas web app in Rust. Deploy it with `wpaas deploy`, or
//! run it locally with `wpaas up`.

use wpaas_sdk::{anyhow, Request, Response};

/// Answers every request; `GREETING` comes from `wpaas config:set`.
fn handle(req: Request) -> anyhow::Result<Response> {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_string());
    Ok(Response::text(format!(
        "{greeting} from {{name}}! ({} {})\n",
        req.method, req.path
    )))
}

wpaas_sdk::http_handler!(handle);

// Built as a binary so the output is `{{name}}.wasm`; the platform calls the
// `wasi:http/incoming-handler` export, never `main`.
fn main() {}
