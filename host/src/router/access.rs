//! What the router reports about each request once it is over: the
//! access log line (`app[router]`, Heroku's logfmt) and request metrics.
//!
//! The response body is wrapped to count the bytes sent; the record is
//! handed to the [`Observer`] when the body is finished or dropped, so
//! `service` covers the whole response. A client that goes away first is
//! H27 (Client Request Interrupted): before the response, the request's
//! [`Unanswered`] guard is dropped with the request and reports status 499,
//! as Heroku's router does; during the body, the body is dropped before
//! its end. A guest whose body fails half-way is H18.

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
    /// The request's method (`GET`).
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// The Host header the router routed by.
    pub host: String,
    /// The X-Request-Id the app was given (the client's, or one the router
    /// made), so a router line can be matched with the app's own logs.
    pub request_id: String,
    /// X-Forwarded-For as the app saw it (the client's address appended).
    pub fwd: String,
    /// The replica that answered (`web.2`), if one did.
    pub dyno: Option<String>,
    /// The cluster node it ran on (`n3`); `None` outside a cluster.
    pub node: Option<String>,
    /// How long the request waited for a slot on that replica.
    pub connect: Duration,
    /// From arrival to the end of the response body.
    pub service: Duration,
    /// The status sent to the client (the router's own on an error).
    pub status: u16,
    /// Response body bytes sent to the client.
    pub bytes: u64,
    /// Heroku's router error code (`H12`) when the router answered instead
    /// of the app.
    pub code: Option<&'static str>,
}

impl Access {
    /// A request that has just arrived: not answered, nothing sent.
    pub(crate) fn arrived(
        app: &str,
        method: http::Method,
        path: &str,
        host: &str,
        request_id: &str,
        fwd: &str,
    ) -> Self {
        Self {
            app: app.to_string(),
            method,
            path: path.to_string(),
            host: host.to_string(),
            request_id: request_id.to_string(),
            fwd: fwd.to_string(),
            dyno: None,
            node: None,
            connect: Duration::ZERO,
            service: Duration::ZERO,
            status: 0,
            bytes: 0,
            code: None,
        }
    }

    /// The logfmt line, as Heroku's router writes it:
    /// `at=info method=GET path="/" host=… request_id=… fwd="…" dyno=web.1
    /// connect=0ms service=3ms status=200 bytes=123`, and for failures
    /// `at=error code=H12 desc="Request timeout" …`.
    pub(crate) fn logfmt(&self) -> String {
        let head = match self.code {
            Some(code) => format!("at=error code={code} desc=\"{}\"", describe(code)),
            None => "at=info".to_string(),
        };
        let node = match &self.node {
            Some(node) => format!(" node={}", bare(node)),
            None => String::new(),
        };
        format!(
            "{head} method={} path={} host={} request_id={} fwd={} dyno={}{node} connect={}ms service={}ms status={} bytes={}",
            self.method,
            quote(&self.path),
            bare(&self.host),
            bare(&self.request_id),
            quote(&self.fwd),
            self.dyno.as_deref().unwrap_or(""),
            self.connect.as_millis(),
            self.service.as_millis(),
            self.status,
            self.bytes,
        )
    }
}

/// Heroku's description of a router error code.
pub(crate) fn describe(code: &str) -> &'static str {
    match code {
        "H10" => "App crashed",
        "H11" => "Backlog too deep",
        "H12" => "Request timeout",
        "H13" => "Connection closed without response",
        "H14" => "No web processes running",
        "H18" => "Server Request Interrupted",
        "H19" => "Backend connection timeout",
        "H27" => "Client Request Interrupted",
        "H80" => "Maintenance mode",
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

/// Receives every finished request: the access log and the metrics both
/// watch the router through it.
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

/// A request routed to an app and not answered yet. Dropped unanswered
/// (hyper drops the request's future when its client disconnects), it
/// reports H27 with status 499.
pub(super) struct Unanswered {
    observer: Arc<dyn Observer>,
    access: Option<Access>,
    started: Instant,
}

impl Unanswered {
    pub(super) fn new(observer: Arc<dyn Observer>, access: Access, started: Instant) -> Self {
        Self {
            observer,
            access: Some(access),
            started,
        }
    }

    /// Wraps `response`'s body so that the observer gets the record, with
    /// `fill` applied and the bytes and duration counted, when it ends or
    /// is dropped.
    pub(super) fn answered(
        mut self,
        response: hyper::Response<BoxBody>,
        fill: impl FnOnce(&mut Access),
    ) -> hyper::Response<BoxBody> {
        let mut access = self.access.take().expect("answered once");
        access.status = response.status().as_u16();
        fill(&mut access);
        // Hyper sends no body for these, and stops after Content-Length
        // bytes without polling for the end: both are complete responses.
        let bodiless =
            access.method == http::Method::HEAD || matches!(access.status, 100..=199 | 204 | 304);
        let expected = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let observer = self.observer.clone();
        let started = self.started;
        response.map(|inner| {
            http_body_util::BodyExt::boxed_unsync(Counted {
                inner,
                report: Some((observer, access)),
                started,
                ended: bodiless,
                expected,
            })
        })
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(mut access) = self.access.take() {
            access.status = 499;
            access.code = Some("H27");
            access.service = self.started.elapsed();
            self.observer.observe(&access);
        }
    }
}

struct Counted {
    inner: BoxBody,
    report: Option<(Arc<dyn Observer>, Access)>,
    started: Instant,
    /// The whole body went out (or there was none to send).
    ended: bool,
    /// Content-Length, when the response declared one.
    expected: Option<u64>,
}

impl Counted {
    fn finish(&mut self) {
        if let Some((observer, mut access)) = self.report.take() {
            let complete = self.ended
                || self.inner.is_end_stream()
                || self.expected.is_some_and(|len| len == access.bytes);
            if !complete && access.code.is_none() {
                access.code = Some("H27");
            }
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
            Poll::Ready(Some(Err(_))) => {
                // The app's body broke off: the client gets a truncated
                // response.
                if let Some((_, access)) = &mut self.report {
                    access.code.get_or_insert("H18");
                }
                self.ended = true;
            }
            Poll::Ready(None) => {
                self.ended = true;
                self.finish();
            }
            Poll::Pending => {}
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
    use std::sync::Mutex;

    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;

    /// Keeps what it is told.
    #[derive(Default)]
    struct Kept(Mutex<Vec<Access>>);

    impl Observer for Kept {
        fn observe(&self, access: &Access) {
            self.0.lock().unwrap().push(access.clone());
        }
    }

    fn request(method: http::Method) -> Access {
        Access::arrived("a", method, "/", "a.localhost", "r", "")
    }

    /// Routes `response` through the observer, lets `consume` read its
    /// body, and returns what was reported.
    fn report(
        method: http::Method,
        response: hyper::Response<BoxBody>,
        consume: impl FnOnce(BoxBody),
    ) -> Access {
        let kept = Arc::new(Kept::default());
        let unanswered = Unanswered::new(kept.clone(), request(method), Instant::now());
        let observed = unanswered.answered(response, |_| {});
        consume(observed.into_body());
        let reports = kept.0.lock().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        reports[0].clone()
    }

    fn chunks(parts: Vec<Result<&'static str, &'static str>>) -> BoxBody {
        let frames = parts.into_iter().map(|part| {
            part.map(|data| Frame::data(Bytes::from(data)))
                .map_err(BoxError::from)
        });
        StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
    }

    fn read_all(body: BoxBody) {
        let _ = futures::executor::block_on(body.collect());
    }

    #[test]
    fn a_body_read_to_its_end_is_a_plain_answer() {
        let access = report(
            http::Method::GET,
            hyper::Response::new(chunks(vec![Ok("ab"), Ok("cd")])),
            read_all,
        );
        assert_eq!((access.status, access.bytes, access.code), (200, 4, None));
    }

    #[test]
    fn a_body_dropped_half_way_is_h27() {
        let access = report(
            http::Method::GET,
            hyper::Response::new(chunks(vec![Ok("ab"), Ok("cd")])),
            |mut body| {
                futures::executor::block_on(body.frame());
            },
        );
        assert_eq!((access.bytes, access.code), (2, Some("H27")));
    }

    #[test]
    fn a_body_complete_by_content_length_or_head_is_not_h27() {
        // Hyper stops after Content-Length bytes without asking for more.
        let mut sized = hyper::Response::new(chunks(vec![Ok("ab"), Ok("cd")]));
        sized
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, 4.into());
        let access = report(http::Method::GET, sized, |mut body| {
            futures::executor::block_on(async {
                body.frame().await;
                body.frame().await;
            });
        });
        assert_eq!((access.bytes, access.code), (4, None));
        // A HEAD response's body is never sent.
        let full = Full::new(Bytes::from("x"))
            .map_err(|n| match n {})
            .boxed_unsync();
        let access = report(http::Method::HEAD, hyper::Response::new(full), drop);
        assert_eq!(access.code, None);
    }

    #[test]
    fn a_body_that_fails_half_way_is_h18() {
        let access = report(
            http::Method::GET,
            hyper::Response::new(chunks(vec![Ok("ab"), Err("guest trapped")])),
            read_all,
        );
        assert_eq!((access.bytes, access.code), (2, Some("H18")));
    }

    #[test]
    fn a_request_dropped_before_its_answer_is_h27_with_499() {
        let kept = Arc::new(Kept::default());
        drop(Unanswered::new(
            kept.clone(),
            request(http::Method::GET),
            Instant::now(),
        ));
        let reports = kept.0.lock().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!((reports[0].status, reports[0].code), (499, Some("H27")));
    }

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
            node: None,
            connect: Duration::from_millis(1),
            service: Duration::from_millis(3),
            status: 200,
            bytes: 12,
            code: None,
        };
        assert_eq!(
            access.logfmt(),
            "at=info method=GET path=\"/x?q=\\\"1\\\"\" host=a.localhost:8080 request_id=abc fwd=\"127.0.0.1\" dyno=web.1 connect=1ms service=3ms status=200 bytes=12"
        );
        // In a cluster, the node it ran on follows the replica.
        let mut on_n3 = access.clone();
        on_n3.node = Some("n3".into());
        assert!(
            on_n3.logfmt().contains(" dyno=web.1 node=n3 connect=1ms "),
            "{}",
            on_n3.logfmt()
        );
        access.code = Some("H12");
        access.status = 504;
        assert!(access
            .logfmt()
            .starts_with("at=error code=H12 desc=\"Request timeout\" method=GET"));
    }
}
