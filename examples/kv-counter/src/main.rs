//! A visit counter and a small JSON store on wpaas app data
//! (`wasi:keyvalue`, through `wpaas_sdk::kv`), and the app's config through
//! `wasi:config`.
//!
//! ```text
//! GET  /                 what it serves
//! POST /visit            increments `visits` in bucket `counter` (atomically); prints the count
//! GET  /visits           the count
//! PUT  /json/KEY         stores the body (must be JSON) in bucket `counter`
//! GET  /json/KEY         the stored JSON (404 if none)
//! GET  /open?bucket=B    opens bucket B: `opened B` or the error (`no-such-store`)
//! GET  /config?key=K     wasi:config/store.get(K)
//! ```
//!
//! `kv-visit.wasm` (src/bin/kv-visit.rs) is a command counting a visit the
//! same way, to run as a worker or `wpaas run -- kv-visit.wasm`.
//!
//! Attach the bucket first: `wpaas kv:create counter -a APP`.

use wpaas_sdk::{anyhow, Request, Response};

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "kv-counter", generate_all });
}

use bindings::wasi::config::store as config;
use wpaas_sdk::kv::{Bucket, Error};

const BUCKET: &str = "counter";

fn describe(err: &Error) -> String {
    match err {
        Error::NoSuchStore => "no-such-store".into(),
        Error::AccessDenied => "access-denied".into(),
        Error::Other(message) => format!("other: {message}"),
    }
}

fn open(name: &str) -> anyhow::Result<Bucket> {
    Bucket::open(name).map_err(|e| anyhow::anyhow!("open {name}: {}", describe(&e)))
}

fn handle(req: Request) -> anyhow::Result<Response> {
    let kv_error = |e: Error| anyhow::anyhow!("{}", describe(&e));
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => Ok(Response::text(
            "kv-counter: POST /visit, GET /visits, PUT|GET /json/KEY, GET /open?bucket=B, GET /config?key=K\n",
        )),
        ("POST", "/visit") => {
            let n = open(BUCKET)?.increment("visits", 1).map_err(kv_error)?;
            Ok(Response::text(format!("{n}\n")))
        }
        ("GET", "/visits") => {
            let value = open(BUCKET)?.get("visits").map_err(kv_error)?;
            let n = value.map_or_else(
                || "0".into(),
                |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned(),
            );
            Ok(Response::text(format!("{n}\n")))
        }
        (method, path) if path.starts_with("/json/") => {
            let key = &path["/json/".len()..];
            let bucket = open(BUCKET)?;
            match method {
                "PUT" => {
                    if wpaas_sdk::serde_json::from_slice::<wpaas_sdk::serde_json::Value>(&req.body)
                        .is_err()
                    {
                        return Ok(Response::text("not JSON\n").with_status(400));
                    }
                    match bucket.set(key, &req.body) {
                        Ok(()) => Ok(Response::text("stored\n")),
                        Err(e) => {
                            Ok(Response::text(format!("{}\n", describe(&e))).with_status(413))
                        }
                    }
                }
                "GET" => match bucket.get(key).map_err(kv_error)? {
                    Some(v) => Ok(Response::new(200)
                        .with_header("content-type", "application/json")
                        .with_body(v)),
                    None => Ok(Response::text("not found\n").with_status(404)),
                },
                _ => Ok(Response::text("method not allowed\n").with_status(405)),
            }
        }
        ("GET", "/open") => {
            let name = req.query_param("bucket").unwrap_or_default();
            Ok(Response::text(match Bucket::open(&name) {
                Ok(_) => format!("opened {name}\n"),
                Err(e) => format!("{}\n", describe(&e)),
            }))
        }
        ("GET", "/config") => {
            let key = req.query_param("key").unwrap_or_default();
            Ok(Response::text(match config::get(&key) {
                Ok(Some(v)) => format!("{key}={v}\n"),
                Ok(None) => format!("{key} is not set\n"),
                Err(e) => format!("error: {e:?}\n"),
            }))
        }
        _ => Ok(Response::text("not found\n").with_status(404)),
    }
}

wpaas_sdk::http_handler!(handle);

// Built as a binary so the output is `kv-counter.wasm`; the host calls the
// `wasi:http/incoming-handler` export, never `main`.
fn main() {}
