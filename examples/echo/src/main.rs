//! Echoes the request back as JSON, with the process environment:
//!
//! ```json
//! {"method": "POST", "path": "/x", "query": "a=1",
//!  "headers": {"content-type": "text/plain", ...},
//!  "body": "...", "body_len": 3, "env": {"GREETING": "hi", ...}}
//! ```
//!
//! Header names are lowercased; repeated headers are joined with `", "`.
//! The body is shown as lossy UTF-8.

use std::collections::BTreeMap;

use wpaas_sdk::serde_json::{json, Map, Value};
use wpaas_sdk::{anyhow, Request, Response};

fn handle(req: Request) -> anyhow::Result<Response> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &req.headers {
        let value = String::from_utf8_lossy(value);
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let env: Map<String, Value> = std::env::vars()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    let body = json!({
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "headers": headers,
        "body": req.body_text(),
        "body_len": req.body.len(),
        "env": env,
    });
    Ok(Response::json(&body)?)
}

wpaas_sdk::http_handler!(handle);

// Built as a binary so the output is `echo.wasm`; the host calls the
// `wasi:http/incoming-handler` export, never `main`.
fn main() {}
