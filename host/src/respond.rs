//! Answers the server writes itself (not an app's): plain text, JSON, and
//! streams of lines. The router's error pages, the API and git's smart HTTP
//! all build their bodies here, so a content type or a trailing newline is
//! decided once.

use std::convert::Infallible;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{header, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde::Serialize;

use crate::runtime::BoxBody;

/// `text/plain; charset=utf-8`.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// `application/json`.
pub const JSON: &str = "application/json";
/// Newline-delimited JSON, one object per line.
pub const NDJSON: &str = "application/x-ndjson";

/// A plain-text answer: `message` and a newline.
pub fn text(status: StatusCode, message: &str) -> hyper::Response<BoxBody> {
    full(status, TEXT, Bytes::from(format!("{message}\n")))
}

/// A JSON answer. The types answered are plain data, so encoding cannot
/// fail; if it did, the client gets a 500 and the log says why.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> hyper::Response<BoxBody> {
    match serde_json::to_vec(value) {
        Ok(body) => full(status, JSON, Bytes::from(body)),
        Err(err) => {
            tracing::error!("could not encode an answer as JSON: {err}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: could not encode the answer",
            )
        }
    }
}

/// A whole body of `content_type`.
pub fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> hyper::Response<BoxBody> {
    let body = Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync();
    with_type(status, content_type, body)
}

/// A streamed text answer: each string received is one line, sent as it
/// comes; the answer ends when the sender is dropped.
pub fn lines(mut lines: tokio::sync::mpsc::Receiver<String>) -> hyper::Response<BoxBody> {
    let chunks = futures::stream::poll_fn(move |cx| {
        lines
            .poll_recv(cx)
            .map(|line| line.map(|line| Bytes::from(line + "\n")))
    });
    streamed(TEXT, chunks)
}

/// A streamed answer of `content_type` (200): each item is sent as it
/// comes.
pub fn streamed(
    content_type: &'static str,
    chunks: impl Stream<Item = Bytes> + Send + 'static,
) -> hyper::Response<BoxBody> {
    with_type(StatusCode::OK, content_type, stream_body(chunks))
}

/// A body that sends each item of `chunks` as it comes.
pub fn stream_body(chunks: impl Stream<Item = Bytes> + Send + 'static) -> BoxBody {
    let frames = chunks.map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    StreamBody::new(frames)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: BoxBody,
) -> hyper::Response<BoxBody> {
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The whole body of `response` as text (for tests of answers).
#[cfg(test)]
pub(crate) async fn body_of(response: hyper::Response<BoxBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn text_ends_in_a_newline_and_says_its_type() {
        let response = text(StatusCode::NOT_FOUND, "no such thing");
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT);
        assert_eq!(body_of(response).await, "no such thing\n");
    }

    #[tokio::test]
    async fn lines_end_when_the_sender_goes() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send("one".to_string()).await.unwrap();
        tx.send("two".to_string()).await.unwrap();
        drop(tx);
        assert_eq!(body_of(lines(rx)).await, "one\ntwo\n");
    }

    #[tokio::test]
    async fn json_says_its_type() {
        let response = json(StatusCode::CREATED, &["a", "b"]);
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()[header::CONTENT_TYPE], JSON);
        assert_eq!(body_of(response).await, r#"["a","b"]"#);
    }
}
