//! # wpaas-sdk
//!
//! The guest SDK for writing wpaas web processes in Rust.
//!
//! A wpaas web process is a WebAssembly component that exports the
//! `wasi:http/incoming-handler` interface of the `wasi:http/proxy` world
//! (WASI 0.2). This crate hides the WASI plumbing behind two plain types,
//! [`Request`] and [`Response`], and one macro, [`http_handler!`], which
//! registers an ordinary function as the component's request handler.
//!
//! ```
//! use wpaas_sdk::{anyhow, Request, Response};
//!
//! fn handle(_req: Request) -> anyhow::Result<Response> {
//!     let greeting = std::env::var("GREETING").unwrap_or_else(|_| "unset".into());
//!     Ok(Response::text(format!("Hello from wpaas! (GREETING={greeting})\n")))
//! }
//!
//! wpaas_sdk::http_handler!(handle);
//! # fn main() {}
//! ```
//!
//! Build the app for the `wasm32-wasip2` target; the output is a component:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! ```
//!
//! ## How a request is served
//!
//! * The request head and the **whole** request body are read before the
//!   handler runs (the body with blocking reads, in chunks), so the handler
//!   gets a complete [`Request`].
//! * The handler's [`Response`] is sent with its status and headers, then its
//!   body is written to the outgoing stream in pieces no larger than the
//!   stream allows at a time. A `content-length` header is added when the
//!   handler did not set one.
//! * If the handler returns `Err(e)`, the error is logged to stderr and the
//!   client gets `500 Internal Server Error` with the body
//!   `Internal Server Error: <e>` ([`Response::internal_error`]). A panic is
//!   not caught: on wasm it aborts the instance (a trap), as it would a
//!   native process.
//!
//! For streaming bodies of unbounded size, write the component against the
//! [`wasi`](https://docs.rs/wasi) crate directly instead of this SDK.
//!
//! ## Features
//!
//! * `json` (default): [`Request::json`] and [`Response::json`], built on
//!   `serde` and [`serde_json`] (re-exported).
//! * `kv`: [`kv::Bucket`], the app's key-value buckets (`wasi:keyvalue`).
//!
//! ## Testing handlers natively
//!
//! The types in this crate are plain Rust, and the crate builds for the host
//! target too, so a handler can be unit-tested with `cargo test` by building
//! a [`Request`] with [`Request::new`] and calling the function directly.

#![deny(missing_docs)]

use std::borrow::Cow;
use std::fmt;

#[cfg(feature = "kv")]
pub mod kv;

pub use anyhow;
#[cfg(feature = "json")]
pub use serde_json;

/// The raw WASI 0.2 bindings (the [`wasi`](https://docs.rs/wasi) crate) the
/// SDK is built on. Used by [`http_handler!`]; exposed for code that needs
/// the low-level API.
#[doc(hidden)]
pub use wasi;

/// Registers `handler` as the component's `wasi:http/incoming-handler`.
///
/// `handler` is the path of a function with the signature
/// `fn(Request) -> Result<Response, E>` where `E: Display`, typically
/// `fn(Request) -> anyhow::Result<Response>`. Invoke the macro once per
/// component, at module level:
///
/// ```
/// use wpaas_sdk::{anyhow, Request, Response};
///
/// fn handle(req: Request) -> anyhow::Result<Response> {
///     Ok(Response::text(format!("you asked for {}\n", req.path)))
/// }
///
/// wpaas_sdk::http_handler!(handle);
/// # fn main() {}
/// ```
///
/// The export only exists when compiling for `wasm32`; on other targets the
/// macro just type-checks the handler, so an app's unit tests build natively.
#[macro_export]
macro_rules! http_handler {
    ($handler:path $(,)?) => {
        const _: () = {
            #[allow(dead_code)]
            struct __WpaasHttpHandler;

            impl $crate::wasi::exports::http::incoming_handler::Guest for __WpaasHttpHandler {
                fn handle(
                    request: $crate::wasi::http::types::IncomingRequest,
                    response_out: $crate::wasi::http::types::ResponseOutparam,
                ) {
                    $crate::__private::serve(request, response_out, $handler)
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::wasi::http::proxy::export!(
                __WpaasHttpHandler with_types_in $crate::wasi
            );
        };
    };
}

/// Support code for [`http_handler!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    use super::{Request, Response};
    use std::fmt::Display;
    use wasi::http::types::{IncomingRequest, ResponseOutparam};

    /// Serves one request with `handler`.
    pub fn serve<F, E>(request: IncomingRequest, out: ResponseOutparam, handler: F)
    where
        F: FnOnce(Request) -> Result<Response, E>,
        E: Display,
    {
        let request = match crate::wire::read_request(request) {
            Ok(request) => request,
            Err(e) => {
                eprintln!("wpaas-sdk: failed to read the request: {e}");
                let response = Response::new(400).with_body(format!("Bad Request: {e}\n"));
                crate::wire::send_response(out, response);
                return;
            }
        };
        let response = match handler(request) {
            Ok(response) => response,
            Err(e) => {
                eprintln!("wpaas-sdk: handler error: {e:#}");
                Response::internal_error(&e)
            }
        };
        crate::wire::send_response(out, response);
    }
}

/// Conversion between the SDK types and the `wasi:http` resources.
mod wire {
    use super::{Request, Response};
    use wasi::http::types::{
        Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
    };
    use wasi::io::streams::{OutputStream, StreamError};

    /// Chunk size for blocking reads of the request body.
    const READ_CHUNK: u64 = 64 * 1024;

    fn method_name(method: Method) -> String {
        match method {
            Method::Get => "GET".into(),
            Method::Head => "HEAD".into(),
            Method::Post => "POST".into(),
            Method::Put => "PUT".into(),
            Method::Delete => "DELETE".into(),
            Method::Connect => "CONNECT".into(),
            Method::Options => "OPTIONS".into(),
            Method::Trace => "TRACE".into(),
            Method::Patch => "PATCH".into(),
            Method::Other(other) => other,
        }
    }

    /// Reads the request head and its whole body.
    pub(crate) fn read_request(incoming: IncomingRequest) -> Result<Request, String> {
        let method = method_name(incoming.method());
        let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".into());
        let authority = incoming.authority();
        let headers = {
            let fields = incoming.headers();
            fields.entries()
        };
        let body = {
            let incoming_body = incoming
                .consume()
                .map_err(|()| "request body already consumed".to_string())?;
            let body = {
                let stream = incoming_body
                    .stream()
                    .map_err(|()| "request body stream unavailable".to_string())?;
                let mut body = Vec::new();
                loop {
                    match stream.blocking_read(READ_CHUNK) {
                        Ok(chunk) => body.extend_from_slice(&chunk),
                        Err(StreamError::Closed) => break,
                        Err(StreamError::LastOperationFailed(e)) => {
                            return Err(format!(
                                "reading the request body failed: {}",
                                e.to_debug_string()
                            ));
                        }
                    }
                }
                body
                // `stream` (a child of `incoming_body`) is dropped here.
            };
            drop(wasi::http::types::IncomingBody::finish(incoming_body));
            body
        };
        let (path, query) = match path_with_query.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (path_with_query, String::new()),
        };
        Ok(Request {
            method,
            path,
            query,
            authority,
            headers,
            body,
        })
    }

    /// Sends `response` through `out`: head first, then the body, then the
    /// end of the body. Failures are logged to stderr (the client has
    /// usually gone away); they never trap.
    pub(crate) fn send_response(out: ResponseOutparam, response: Response) {
        let Response {
            status,
            mut headers,
            body,
        } = response;
        if response_allows_content_length(status)
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            headers.push(("content-length".into(), body.len().to_string().into_bytes()));
        }

        let fields = Fields::new();
        for (name, value) in &headers {
            if let Err(e) = fields.append(name, value) {
                eprintln!("wpaas-sdk: dropping response header {name:?}: {e:?}");
            }
        }
        let outgoing = OutgoingResponse::new(fields);
        if outgoing.set_status_code(status).is_err() {
            eprintln!("wpaas-sdk: invalid status code {status}, sending 500");
            // Ignoring the result is fine: 500 is always valid.
            let _ = outgoing.set_status_code(500);
        }
        let Ok(outgoing_body) = outgoing.body() else {
            eprintln!("wpaas-sdk: response body unavailable");
            ResponseOutparam::set(out, Ok(outgoing));
            return;
        };
        ResponseOutparam::set(out, Ok(outgoing));

        let written = match outgoing_body.write() {
            Ok(stream) => write_all(&stream, &body),
            Err(()) => Err("response body stream unavailable".to_string()),
        };
        match written {
            Ok(()) => {
                if let Err(e) = OutgoingBody::finish(outgoing_body, None) {
                    eprintln!("wpaas-sdk: finishing the response body failed: {e:?}");
                }
            }
            // Dropping the body without `finish` tells the host the response
            // is incomplete.
            Err(e) => eprintln!("wpaas-sdk: writing the response body failed: {e}"),
        }
    }

    fn response_allows_content_length(status: u16) -> bool {
        !(100..200).contains(&status) && status != 204 && status != 304
    }

    /// Writes all of `data`, never more than the stream accepts at a time,
    /// then flushes.
    fn write_all(stream: &OutputStream, mut data: &[u8]) -> Result<(), String> {
        let describe = |e: StreamError| match e {
            StreamError::Closed => "stream closed".to_string(),
            StreamError::LastOperationFailed(e) => e.to_debug_string(),
        };
        if !data.is_empty() {
            let pollable = stream.subscribe();
            while !data.is_empty() {
                let permit = stream.check_write().map_err(describe)?;
                if permit == 0 {
                    pollable.block();
                    continue;
                }
                let n = data
                    .len()
                    .min(usize::try_from(permit).unwrap_or(usize::MAX));
                stream.write(&data[..n]).map_err(describe)?;
                data = &data[n..];
            }
        }
        stream.blocking_flush().map_err(describe)
    }
}

/// Percent-decodes `s`; `+` becomes a space when `plus_is_space` (form
/// encoding). Invalid escapes are kept as is; invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP request, with its body read in full.
///
/// Header names are as the host delivers them (lowercase for HTTP/1 and
/// HTTP/2 requests served by wasmtime); look them up with
/// [`header`](Request::header), which ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method in upper case, e.g. `"GET"`.
    pub method: String,
    /// The path, as sent (still percent-encoded), e.g. `"/a/b"`. Never
    /// empty: at least `"/"`.
    pub path: String,
    /// The raw query string, without the leading `?`; empty if none.
    pub query: String,
    /// The authority (`host[:port]`) of the request, when known.
    pub authority: Option<String>,
    /// All header entries in order, as `(name, value)` pairs; a name
    /// repeats if the header was sent more than once.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole request body.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with `method` for `path_with_query` (e.g. `"/search?q=x"`),
    /// no headers and an empty body. Meant for testing handlers natively.
    pub fn new(method: impl Into<String>, path_with_query: impl AsRef<str>) -> Self {
        let path_with_query = path_with_query.as_ref();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query, ""));
        Request {
            method: method.into(),
            path: if path.is_empty() { "/" } else { path }.to_string(),
            query: query.to_string(),
            authority: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header entry (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The value of the first header named `name` (case-insensitive), if it
    /// is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The values of every header named `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// All query parameters in order, percent-decoded (`+` decodes to a
    /// space). A parameter without `=` has an empty value.
    pub fn query_params(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(key, true), percent_decode(value, true))
            })
            .collect()
    }

    /// The percent-decoded value of the first query parameter named `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_params()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The body as text; invalid UTF-8 sequences become `U+FFFD`.
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Deserializes the body as JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// An HTTP response: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// Header entries in order, as `(name, value)` pairs.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `200` response with `content-type: text/plain; charset=utf-8` and
    /// `body`.
    pub fn text(body: impl Into<String>) -> Self {
        Response::new(200)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// A `200` response with `content-type: application/json` and `value`
    /// serialized as the body.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Response::new(200)
            .with_header("content-type", "application/json")
            .with_body(serde_json::to_vec(value)?))
    }

    /// The `500` response sent when a handler returns `Err(error)`:
    /// `text/plain` body `Internal Server Error: <error>` plus a newline.
    pub fn internal_error(error: &dyn fmt::Display) -> Self {
        Response::new(500)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(format!("Internal Server Error: {error:#}\n"))
    }

    /// Replaces the status (builder style).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header entry (builder style). Adding a name twice sends both.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_new_splits_path_and_query() {
        let req = Request::new("GET", "/a/b?x=1&y=two");
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/a/b");
        assert_eq!(req.query, "x=1&y=two");
        let req = Request::new("GET", "?x=1");
        assert_eq!(req.path, "/");
        assert_eq!(req.query, "x=1");
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let req = Request::new("GET", "/?q=hello+world%21&empty&e=&x=%zz&u=%C3%A9&q=2");
        assert_eq!(req.query_param("q").as_deref(), Some("hello world!"));
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("e").as_deref(), Some(""));
        assert_eq!(req.query_param("x").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("u").as_deref(), Some("é"));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.query_params().len(), 6);
    }

    #[test]
    fn percent_decode_edge_cases() {
        assert_eq!(percent_decode("%", true), "%");
        assert_eq!(percent_decode("%4", true), "%4");
        assert_eq!(percent_decode("%41", true), "A");
        assert_eq!(percent_decode("a%2", true), "a%2");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("%ff", true), "\u{fffd}");
    }

    #[test]
    fn headers_are_case_insensitive() {
        let req = Request::new("POST", "/")
            .with_header("content-type", "text/plain")
            .with_header("X-Multi", "a")
            .with_header("x-multi", b"\xff".to_vec());
        assert_eq!(req.header("Content-Type"), Some(&b"text/plain"[..]));
        assert_eq!(req.header_str("CONTENT-TYPE"), Some("text/plain"));
        assert_eq!(req.header_all("x-multi").count(), 2);
        assert_eq!(req.header("nope"), None);
    }

    #[test]
    fn body_text_is_lossy() {
        let req = Request::new("POST", "/").with_body(b"hi \xff".to_vec());
        assert_eq!(req.body_text(), "hi \u{fffd}");
    }

    #[test]
    fn response_builders() {
        let resp = Response::text("hello");
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("Content-Type"),
            Some(&b"text/plain; charset=utf-8"[..])
        );
        assert_eq!(resp.body, b"hello");

        let resp = Response::new(201)
            .with_header("x-a", "1")
            .with_body(vec![1, 2, 3])
            .with_status(202);
        assert_eq!(resp.status, 202);
        assert_eq!(resp.header("X-A"), Some(&b"1"[..]));
        assert_eq!(resp.body, vec![1, 2, 3]);
    }

    #[test]
    fn internal_error_response() {
        let resp = Response::internal_error(&anyhow::anyhow!("deliberate failure"));
        assert_eq!(resp.status, 500);
        assert_eq!(resp.body, b"Internal Server Error: deliberate failure\n");
        let err = anyhow::anyhow!("inner").context("outer");
        let resp = Response::internal_error(&err);
        assert_eq!(resp.body, b"Internal Server Error: outer: inner\n");
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_round_trip() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Point {
            x: i32,
            y: i32,
        }
        let resp = Response::json(&Point { x: 1, y: 2 }).unwrap();
        assert_eq!(resp.header("content-type"), Some(&b"application/json"[..]));
        assert_eq!(resp.body, br#"{"x":1,"y":2}"#);
        let req = Request::new("POST", "/").with_body(resp.body);
        assert_eq!(req.json::<Point>().unwrap(), Point { x: 1, y: 2 });
        assert!(Request::new("POST", "/").json::<Point>().is_err());
    }

    fn failing(_: Request) -> anyhow::Result<Response> {
        anyhow::bail!("deliberate failure")
    }

    // The macro must expand (and type-check the handler) on the host too.
    http_handler!(failing);

    #[test]
    fn handler_is_callable() {
        assert!(failing(Request::new("GET", "/")).is_err());
    }
}
