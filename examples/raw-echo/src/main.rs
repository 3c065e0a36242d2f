//! A `wasi:http/proxy` component written directly against the `wasi` crate
//! (no wpaas SDK), to show that foreign components run on wpaas.
//!
//! It streams: the request body is read in chunks and each chunk is written
//! straight to the response body, so bodies of any size pass through in
//! constant memory. `GET /?bytes=N` instead streams N bytes of `x` in 64 KiB
//! chunks. Every response is `200` with `content-type:
//! application/octet-stream` and `x-raw-echo: 1`.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

const CHUNK: usize = 64 * 1024;

struct RawEcho;

impl Guest for RawEcho {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            (
                "content-type".to_string(),
                b"application/octet-stream".to_vec(),
            ),
            ("x-raw-echo".to_string(), b"1".to_vec()),
        ])
        .expect("static headers are valid");
        let response = OutgoingResponse::new(headers); // status defaults to 200
        let body = response.body().expect("first call to body()");
        ResponseOutparam::set(response_out, Ok(response));

        let result = {
            let out = body.write().expect("first call to write()");
            let generate = match request.method() {
                Method::Get => requested_bytes(&request),
                _ => None,
            };
            match generate {
                Some(n) => generate_bytes(&out, n),
                None => copy_body(&request, &out),
            }
            .and_then(|()| out.blocking_flush().map_err(describe))
            // `out` (a child of `body`) is dropped here.
        };
        match result {
            Ok(()) => {
                if let Err(e) = OutgoingBody::finish(body, None) {
                    eprintln!("raw-echo: finishing the body failed: {e:?}");
                }
            }
            // Dropping `body` unfinished marks the response as truncated.
            Err(e) => eprintln!("raw-echo: {e}"),
        }
    }
}

/// The `bytes` query parameter, if any.
fn requested_bytes(request: &IncomingRequest) -> Option<u64> {
    let path_with_query = request.path_with_query()?;
    let (_, query) = path_with_query.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "bytes")
        .and_then(|(_, value)| value.parse().ok())
}

fn describe(e: StreamError) -> String {
    match e {
        StreamError::Closed => "stream closed".to_string(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

/// Writes `n` bytes of `x`, 64 KiB at a time.
fn generate_bytes(out: &OutputStream, mut n: u64) -> Result<(), String> {
    let chunk = vec![b'x'; CHUNK];
    while n > 0 {
        let len = n.min(CHUNK as u64) as usize;
        write_all(out, &chunk[..len])?;
        n -= len as u64;
    }
    Ok(())
}

/// Copies the request body to `out` chunk by chunk.
fn copy_body(request: &IncomingRequest, out: &OutputStream) -> Result<(), String> {
    let incoming_body = request
        .consume()
        .map_err(|()| "request body already consumed".to_string())?;
    let copied = {
        let input: InputStream = incoming_body
            .stream()
            .map_err(|()| "request body stream unavailable".to_string())?;
        loop {
            match input.blocking_read(CHUNK as u64) {
                Ok(chunk) => write_all(out, &chunk)?,
                Err(StreamError::Closed) => break Ok(()),
                Err(e) => break Err(format!("reading the request body: {}", describe(e))),
            }
        }
        // `input` (a child of `incoming_body`) is dropped here.
    };
    drop(IncomingBody::finish(incoming_body));
    copied
}

/// Writes all of `data`, never more than `check_write` allows, waiting for
/// the stream to become writable when it is full.
fn write_all(out: &OutputStream, mut data: &[u8]) -> Result<(), String> {
    while !data.is_empty() {
        let permit = out.check_write().map_err(describe)?;
        if permit == 0 {
            out.subscribe().block();
            continue;
        }
        let n = data.len().min(permit as usize);
        out.write(&data[..n]).map_err(describe)?;
        data = &data[n..];
    }
    Ok(())
}

wasi::http::proxy::export!(RawEcho);

// Built as a binary so the output is `raw-echo.wasm`; the host calls the
// `wasi:http/incoming-handler` export, never `main`.
fn main() {}
