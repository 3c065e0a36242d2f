//! A deliberately misbehaving app, for the host's sandbox tests.
//!
//! | route          | behaviour                                          |
//! |----------------|----------------------------------------------------|
//! | `/`            | `200 ok`                                           |
//! | `/trap`        | executes `unreachable` (a wasm trap)               |
//! | `/panic`       | `panic!` (aborts: a trap)                          |
//! | `/stack`       | unbounded recursion with big frames (overflows the |
//! |               | shadow stack in linear memory)                      |
//! | `/deep`        | unbounded recursion with small frames (overflows   |
//! |               | the wasm call stack)                               |
//! | `/loop`        | infinite CPU loop                                  |
//! | `/memory`      | allocates and touches 1 MiB blocks forever         |
//! | `/sleep?ms=N`  | sleeps N ms, then `200 slept N ms on $DYNO`        |
//! | `/error`       | handler returns an error (the SDK's 500)           |
//! | `/print?text=T&n=N` | prints `T 1` … `T N` on stdout (default 1) and |
//! |               | `T on stderr` on stderr: `200 printed N lines on $DYNO` |
//! | `/fetch?url=U` | GETs U (`http://HOST:PORT/path`) with wasi:http:   |
//! |                | `200 fetched STATUS`, `502 denied: CODE` if the    |
//! |                | host refused the destination, else `502 failed:    |
//! |                | CODE`                                              |
//! | `/file?path=P` | reads P from the app's files: `200 CONTENTS`, else |
//! |                | `404 ERROR`                                        |
//! | `/write?path=P`| tries to create P: `200 wrote P`, else `403 ERROR` |
//! | `/resources?n=N` | creates and keeps N `wasi:http` fields resources: |
//! |                | `200 holding N resources` (the host traps it first |
//! |                | when N is past its resource-table cap)             |
//! | `/no-response` | returns without setting a response (the host      |
//! |                | answers 500, as `wasmtime serve` does)             |
//! | anything else  | `404 not found`                                    |

use std::hint::black_box;

use wpaas_sdk::wasi::http::outgoing_handler;
use wpaas_sdk::wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, OutgoingRequest, ResponseOutparam, Scheme,
};
use wpaas_sdk::{anyhow, Request, Response};

fn handle(req: Request) -> anyhow::Result<Response> {
    match req.path.as_str() {
        "/" => Ok(Response::text("ok")),
        "/trap" => trap(),
        "/panic" => panic!("deliberate panic"),
        "/stack" => {
            let depth = recurse(black_box(0));
            Ok(Response::text(format!("recursed {depth} times?!")))
        }
        "/deep" => {
            let value = deep(black_box(u64::MAX));
            Ok(Response::text(format!("returned {value}?!")))
        }
        "/loop" => {
            let mut counter: u64 = 0;
            loop {
                counter = black_box(counter.wrapping_add(1));
            }
        }
        "/memory" => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                let block = vec![black_box(0xA5u8); 1 << 20];
                hog.push(black_box(block));
                black_box(&hog);
            }
        }
        "/sleep" => {
            let ms: u64 = req
                .query_param("ms")
                .ok_or_else(|| anyhow::anyhow!("missing ?ms="))?
                .parse()?;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            let dyno = std::env::var("DYNO").unwrap_or_default();
            Ok(Response::text(format!("slept {ms} ms on {dyno}")))
        }
        "/error" => Err(anyhow::anyhow!("deliberate failure")),
        "/print" => {
            let text = req.query_param("text").unwrap_or_else(|| "hello".into());
            let n: u64 = req.query_param("n").map_or(Ok(1), |n| n.parse())?;
            for i in 1..=n {
                println!("{text} {i}");
            }
            eprintln!("{text} on stderr");
            let dyno = std::env::var("DYNO").unwrap_or_default();
            Ok(Response::text(format!("printed {n} lines on {dyno}")))
        }
        "/fetch" => {
            let url = req
                .query_param("url")
                .ok_or_else(|| anyhow::anyhow!("missing ?url="))?;
            Ok(match fetch(&url)? {
                Ok(status) => Response::text(format!("fetched {status}")),
                Err(code @ ErrorCode::HttpRequestDenied) => {
                    Response::new(502).with_body(format!("denied: {code:?}"))
                }
                Err(code) => Response::new(502).with_body(format!("failed: {code:?}")),
            })
        }
        "/file" => {
            let path = req
                .query_param("path")
                .ok_or_else(|| anyhow::anyhow!("missing ?path="))?;
            Ok(match std::fs::read_to_string(&path) {
                Ok(contents) => Response::text(contents),
                Err(err) => Response::new(404).with_body(format!("{err}")),
            })
        }
        "/write" => {
            let path = req
                .query_param("path")
                .ok_or_else(|| anyhow::anyhow!("missing ?path="))?;
            Ok(match std::fs::write(&path, "written by the guest") {
                Ok(()) => Response::text(format!("wrote {path}")),
                Err(err) => Response::new(403).with_body(format!("{err}")),
            })
        }
        "/resources" => {
            let n: usize = req
                .query_param("n")
                .ok_or_else(|| anyhow::anyhow!("missing ?n="))?
                .parse()?;
            let held: Vec<Fields> = (0..n).map(|_| black_box(Fields::new())).collect();
            Ok(Response::text(format!("holding {} resources", held.len())))
        }
        _ => Ok(Response::new(404).with_body("not found")),
    }
}

/// GETs `url` (`http://HOST[:PORT][/path]`) with wasi:http's outgoing
/// handler; the response status, or the error code the host gave.
fn fetch(url: &str) -> anyhow::Result<Result<u16, ErrorCode>> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let invalid = |what: &str| anyhow::anyhow!("invalid {what} in {url}");
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| invalid("path"))?;
    let pending = match outgoing_handler::handle(request, None) {
        Ok(pending) => pending,
        Err(code) => return Ok(Err(code)),
    };
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(Ok(response.status())),
        Some(Ok(Err(code))) => Ok(Err(code)),
        Some(Err(())) | None => Err(anyhow::anyhow!("response already taken or not ready")),
    }
}

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    std::process::abort()
}

/// Recurses until the stack overflows. Each frame keeps a 1 KiB array alive
/// across the recursive call (through `black_box`), so the optimiser can
/// neither turn it into a loop nor drop the frames.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[(depth % 1024) as usize] = depth as u8;
    black_box(&mut frame);
    let below = recurse(black_box(depth + 1));
    black_box(&frame);
    below + u64::from(frame[0])
}

/// Recurses with frames small enough to live only on the wasm call stack
/// (no shadow-stack spill), so it is the engine's stack limit that trips.
/// Rotate-then-xor is not an accumulator LLVM can turn into a loop.
#[inline(never)]
fn deep(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    deep(n - 1).rotate_left(3) ^ n
}

/// The export, written out instead of `wpaas_sdk::http_handler!(handle)`
/// so that `/no-response` can return without ever calling
/// `response-outparam::set` (the SDK always sets one); every other path is
/// served by the SDK, as the macro would.
#[allow(dead_code)]
struct Hostile;

impl wpaas_sdk::wasi::exports::http::incoming_handler::Guest for Hostile {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        if path.split('?').next() == Some("/no-response") {
            drop(response_out);
            return;
        }
        wpaas_sdk::__private::serve(request, response_out, handle)
    }
}

#[cfg(target_arch = "wasm32")]
wpaas_sdk::wasi::http::proxy::export!(Hostile with_types_in wpaas_sdk::wasi);

// Built as a binary so the output is `hostile.wasm`; the host calls the
// `wasi:http/incoming-handler` export, never `main`.
fn main() {}
