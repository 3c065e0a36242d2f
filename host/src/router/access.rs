//! What the router reports about each request once it is over: the
//! access log line (`app[router]`, Heroku's logfmt) and request metrics.
//!
//! The response body is wrapped to count the bytes sent; the record is
//! handed to the [`Observer`] when the body is finished or dropped (the
//! client went away), so `service` covers the whole response.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::runtime::{BoxBody, BoxError};

/// One finished request to an app.
#[derive(Debug, Clone)]
pub struct Access {
    /// The app it was routed to.
    pub app: String,
    /// `GET`.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// The Host header.
    pub host: String,
    /// X-Request-Id.
    pub request_id: String,
    /// X-Forwarded-For as the app saw it.
    pub fwd: String,
    /// The replica that answered (`web.2`), if one did.
    pub dyno: Option<String>,
    /// From arrival to the end of the response body.
    pub service: Duration,
    /// Status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// Heroku's router error code (`H12`) when the router answered instead
    /// of the app.
    pub code: Option<&'static str>,
}

impl Access {
    /// The logfmt line, as Heroku's router writes it:
    /// `at=info method=GET path="/" host=… request_id=… fwd="…" dyno=web.1
    /// connect=0ms service=3ms status=200 bytes=123`, and for failures
    /// `at=error code=H12 desc="Request timeout" …`.
    pub fn logfmt(&self) -> String {
        let head = match self.code {
            Some(code) => format!("at=error code={code} desc=\"{}\"", describe(code)),
            None => "at=info".to_string(),
        };
        format!(
            "{head} method={} path={} host={} request_id={} fwd={} dyno={} connect=0ms service={}ms status={} bytes={}",
            self.method,
            quote(&self.path),
            bare(&self.host),
            bare(&self.request_id),
            quote(&self.fwd),
            self.dyno.as_deref().unwrap_or(""),
            self.service.as_millis(),
            self.status,
            self.bytes,
        )
    }
}

/// Heroku's description of a router error code.
pub fn describe(code: &str) -> &'static str {
    match code {
        "H10" => "App crashed",
        "H11" => "Backlog too deep",
        "H12" => "Request timeout",
        "H13" => "Connection closed without response",
        "H14" => "No web processes running",
        "H18" => "Server Request Interrupted",
        "H27" => "Client Request Interrupted",
        _ => "Router error",
    }
}

/// A logfmt value in quotes, with `"` and `\` escaped and control
/// characters dropped.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A logfmt value without quotes: spaces and quotes replaced.
fn bare(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '"' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Receives every finished request.
pub trait Observer: Send + Sync + 'static {
    /// Called once per request, when its response is over.
    fn observe(&self, access: &Access);
}

/// Several observers, each told in turn.
impl Observer for Vec<Arc<dyn Observer>> {
    fn observe(&self, access: &Access) {
        for observer in self {
            observer.observe(access);
        }
    }
}

/// Wraps `body` so that `observer` gets `access` (with the byte count and
/// duration filled in) when the body ends or is dropped.
pub(super) fn observed(
    body: BoxBody,
    observer: Arc<dyn Observer>,
    access: Access,
    started: Instant,
) -> BoxBody {
    http_body_util::BodyExt::boxed_unsync(Counted {
        inner: body,
        report: Some((observer, access)),
        started,
    })
}

struct Counted {
    inner: BoxBody,
    report: Option<(Arc<dyn Observer>, Access)>,
    started: Instant,
}

impl Counted {
    fn finish(&mut self) {
        if let Some((observer, mut access)) = self.report.take() {
            access.service = self.started.elapsed();
            observer.observe(&access);
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some((_, access))) = (frame.data_ref(), &mut self.report) {
                    access.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_lines_look_like_herokus() {
        let mut access = Access {
            app: "a".into(),
            method: http::Method::GET,
            path: "/x?q=\"1\"".into(),
            host: "a.localhost:8080".into(),
            request_id: "abc".into(),
            fwd: "127.0.0.1".into(),
            dyno: Some("web.1".into()),
            service: Duration::from_millis(3),
            status: 200,
            bytes: 12,
            code: None,
        };
        assert_eq!(
            access.logfmt(),
            "at=info method=GET path=\"/x?q=\\\"1\\\"\" host=a.localhost:8080 request_id=abc fwd=\"127.0.0.1\" dyno=web.1 connect=0ms service=3ms status=200 bytes=12"
        );
        access.code = Some("H12");
        access.status = 504;
        assert!(access
            .logfmt()
            .starts_with("at=error code=H12 desc=\"Request timeout\" method=GET"));
    }
}
