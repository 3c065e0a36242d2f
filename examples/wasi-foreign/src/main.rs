//! A component written against the standard WIT only — wasi:http,
//! wasi:keyvalue 0.2.0-draft and wasi:config 0.2.0-rc.1 through `wasi` and
//! `wit-bindgen`, nothing of wpaas — that does what wasmtime's own test
//! programs `cli_serve_keyvalue` and `cli_serve_config` do, and a longer
//! transcript of both interfaces. `tests/tests/all/foreign.rs` serves it
//! under wpaas and under `wasmtime serve -Skeyvalue -Sconfig` with the same
//! data (`hello` = `world` in the bucket and in the config) and compares
//! the answers.
//!
//! ```text
//! GET /            what it serves
//! GET /keyvalue     store.open("").get("hello"), as cli_serve_keyvalue
//! GET /config       config store.get("hello"), as cli_serve_config
//! GET /transcript   one line per operation: opens, reads, writes, atomics,
//!                   batch, list-keys, errors, config; leaves the bucket as
//!                   it found it
//! ```

use std::fmt::Write as _;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "wasi-foreign", generate_all });
}

use bindings::wasi::config::store as config;
use bindings::wasi::keyvalue::store::{open, Bucket, Error};
use bindings::wasi::keyvalue::{atomics, batch};

const USAGE: &[u8] = b"wasi-foreign: GET /keyvalue, /config or /transcript\n";

struct Foreign;

impl Guest for Foreign {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (status, body) = match request.path_with_query().as_deref() {
            // The two test programs unwrap: a missing bucket or key traps.
            Some("/keyvalue") => (200, open("").unwrap().get("hello").unwrap().unwrap()),
            Some("/config") => (200, config::get("hello").unwrap().unwrap().into_bytes()),
            Some("/transcript") => (200, transcript().into_bytes()),
            Some("/") => (200, USAGE.to_vec()),
            _ => (404, USAGE.to_vec()),
        };
        respond(response_out, status, &body);
    }
}

wasi::http::proxy::export!(Foreign);

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("first call to body()");
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().expect("first call to write()");
    // blocking_write_and_flush takes at most 4096 bytes at a time.
    for chunk in body.chunks(4096) {
        stream.blocking_write_and_flush(chunk).expect("writing the body");
    }
    drop(stream);
    OutgoingBody::finish(outgoing, None).expect("finishing the body");
}

/// An error by its variant: the text of `other` is each implementation's
/// own (wasmtime says `invalid digit found in string`, wpaas says why in its
/// words), so only the case is compared.
fn variant(err: &Error) -> &'static str {
    match err {
        Error::NoSuchStore => "no-such-store",
        Error::AccessDenied => "access-denied",
        Error::Other(_) => "other",
    }
}

/// `Ok(…)` or `Err(variant)` of a keyvalue call, its value shown by `show`.
fn line<T>(out: &mut String, what: &str, result: Result<T, Error>, show: impl Fn(T) -> String) {
    let shown = match result.map(show) {
        Ok(shown) if shown.is_empty() => "ok".to_string(),
        Ok(shown) => format!("ok {shown}"),
        Err(err) => format!("err {}", variant(&err)),
    };
    writeln!(out, "{what}: {shown}").unwrap();
}

fn value(v: Option<Vec<u8>>) -> String {
    match v {
        Some(bytes) => format!("{:?}", String::from_utf8_lossy(&bytes)),
        None => "none".into(),
    }
}

/// Every key, following the cursor; sorted, as the interface promises no
/// order (wasmtime's in-memory store lists a hash map's).
fn all_keys(bucket: &Bucket) -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket.list_keys(cursor)?;
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    keys.sort();
    Ok(keys)
}

fn transcript() -> String {
    let mut out = String::new();
    let o = &mut out;
    line(o, "open nope", open("nope"), |_| "bucket".into());
    let b = match open("") {
        Ok(b) => b,
        Err(err) => return format!("open \"\": err {}\n", variant(&err)),
    };
    writeln!(o, "open \"\": ok bucket").unwrap();

    // Reads of the preset data and of keys that are not there.
    line(o, "get hello", b.get("hello"), value);
    line(o, "get missing", b.get("missing"), value);
    line(o, "exists hello", b.exists("hello"), |v| v.to_string());
    line(o, "exists missing", b.exists("missing"), |v| v.to_string());
    line(o, "delete missing", b.delete("missing"), |()| String::new());

    // Writes: any string is a key (the empty one too), any bytes a value.
    for key in ["k1", "", "ключ 🔑"] {
        line(o, &format!("set {key:?}"), b.set(key, b"v1"), |()| String::new());
        line(o, &format!("get {key:?}"), b.get(key), value);
    }
    line(o, "set k1 again", b.set("k1", b"v2"), |()| String::new());
    line(o, "get k1", b.get("k1"), value);
    line(o, "set bin", b.set("bin", &[0, 159, 146, 150, 255]), |()| String::new());
    line(o, "get bin", b.get("bin"), |v| format!("{v:?}"));
    line(o, "set empty", b.set("empty", b""), |()| String::new());
    line(o, "get empty", b.get("empty"), |v| format!("{v:?}"));
    line(o, "exists empty", b.exists("empty"), |v| v.to_string());

    // Atomics: an absent key counts from 0; a value that is not a decimal
    // u64, and an overflow, are errors that change nothing.
    line(o, "increment n 5", atomics::increment(&b, "n", 5), |v| v.to_string());
    line(o, "increment n 2", atomics::increment(&b, "n", 2), |v| v.to_string());
    line(o, "increment n 0", atomics::increment(&b, "n", 0), |v| v.to_string());
    line(o, "get n", b.get("n"), value);
    line(o, "increment hello", atomics::increment(&b, "hello", 1), |v| v.to_string());
    line(o, "get hello", b.get("hello"), value);
    line(o, "set max", b.set("max", u64::MAX.to_string().as_bytes()), |()| String::new());
    line(o, "increment max 1", atomics::increment(&b, "max", 1), |v| v.to_string());
    line(o, "get max", b.get("max"), value);
    line(o, "set neg", b.set("neg", b"-1"), |()| String::new());
    line(o, "increment neg 1", atomics::increment(&b, "neg", 1), |v| v.to_string());

    // Batch: get-many answers key by key, none for a missing one.
    let pairs = [("b1".to_string(), b"x".to_vec()), ("b2".to_string(), b"y".to_vec())];
    line(o, "set-many b1 b2", batch::set_many(&b, &pairs), |()| String::new());
    let keys = ["b1", "missing", "b2"].map(String::from);
    line(o, "get-many b1 missing b2", batch::get_many(&b, &keys), |found| {
        let shown: Vec<String> = found
            .into_iter()
            .map(|kv| match kv {
                Some((k, v)) => format!("{k}={}", String::from_utf8_lossy(&v)),
                None => "none".into(),
            })
            .collect();
        shown.join(" ")
    });
    line(o, "list-keys", all_keys(&b), |keys| format!("{keys:?}"));
    line(o, "list-keys past the end", b.list_keys(Some(1_000_000)), |page| {
        format!("{:?} cursor {:?}", page.keys, page.cursor)
    });

    // Clean up, so that the next request finds what this one did.
    let written = ["k1", "", "ключ 🔑", "bin", "empty", "n", "max", "neg", "b1", "b2", "missing"];
    let written = written.map(String::from);
    line(o, "delete-many", batch::delete_many(&b, &written), |()| String::new());
    line(o, "list-keys", all_keys(&b), |keys| format!("{keys:?}"));
    line(o, "exists k1", b.exists("k1"), |v| v.to_string());
    drop(b);

    // wasi:config: the config vars, nothing else.
    let config_line = |what: &str, result: Result<String, config::Error>| match result {
        Ok(shown) => format!("{what}: ok {shown}\n"),
        Err(config::Error::Upstream(_)) => format!("{what}: err upstream\n"),
        Err(config::Error::Io(_)) => format!("{what}: err io\n"),
    };
    out += &config_line("config get hello", config::get("hello").map(|v| format!("{v:?}")));
    out += &config_line("config get missing", config::get("missing").map(|v| format!("{v:?}")));
    let all = config::get_all().map(|mut all| {
        all.sort();
        format!("{all:?}")
    });
    out += &config_line("config get-all", all);
    out
}

// A wasi:http component: the host calls the `incoming-handler` export.
fn main() {}
