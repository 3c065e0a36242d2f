//! The router: one HTTP front door for every app.

mod access;
mod forwarded;
mod server;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, StatusCode};
use hyper::body::Incoming;

use crate::runtime::{BoxBody, CgiContext, ServedBy, WebError};

pub use access::{Access, Observer};
pub(crate) use forwarded::REQUEST_ID;
pub use server::{serve, ServeOptions};
pub use table::{AppRoute, RouteTable};

/// Routes requests to apps by Host header.
pub struct Router {
    table: Arc<RouteTable>,
    observer: Option<Arc<dyn Observer>>,
}

impl Router {
    /// A router over `table`.
    pub fn new(table: Arc<RouteTable>) -> Self {
        Self {
            table,
            observer: None,
        }
    }

    /// Reports every request to an app to `observer` (access log, metrics).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Handles one request from `remote` that arrived on `local`.
    pub(crate) async fn handle(
        &self,
        mut req: hyper::Request<Incoming>,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> hyper::Response<BoxBody> {
        let started = Instant::now();
        let request_id = forwarded::annotate(req.headers_mut(), remote, local);
        if req.extensions().get::<crate::edge::Secure>().is_some() {
            req.headers_mut()
                .insert("x-forwarded-proto", HeaderValue::from_static("https"));
        }
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())
            .map(str::to_owned);
        let mut unanswered = None;
        let mut response = match self.table.lookup(host.as_deref()) {
            None => error_page(
                StatusCode::NOT_FOUND,
                &format!(
                    "No such app for host `{}`. Apps answer at http://APP.localhost.",
                    host.as_deref().unwrap_or("")
                ),
            ),
            Some(app) => {
                if let Some(observer) = &self.observer {
                    let access = record(&app.name, &req, host.as_deref(), &request_id);
                    unanswered = Some(access::Unanswered::new(observer.clone(), access, started));
                }
                match &app.web {
                    None => {
                        tracing::warn!(app = %app.name, code = "H14", "no web processes running");
                        let mut page = error_page(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "No web processes running for this app.",
                        );
                        page.extensions_mut().insert(RouterCode("H14"));
                        page
                    }
                    Some(web) => {
                        let cgi = CgiContext { remote, local };
                        match web.serve(req, &cgi).await {
                            Ok(response) => response,
                            Err(err) => failure_page(&app.name, &err, &request_id),
                        }
                    }
                }
            }
        };
        response.headers_mut().insert(REQUEST_ID, request_id);
        let Some(unanswered) = unanswered else {
            return response;
        };
        let served_by = response.extensions().get::<ServedBy>().cloned();
        let code = response.extensions().get::<RouterCode>().map(|c| c.0);
        unanswered.answered(response, |access| {
            if let Some(served_by) = served_by {
                access.dyno = Some(served_by.replica);
                access.connect = served_by.connect;
            }
            access.code = code;
        })
    }
}

fn failure_page(app: &str, err: &WebError, request_id: &HeaderValue) -> hyper::Response<BoxBody> {
    tracing::warn!(
        app,
        code = err.code(),
        request_id = request_id.to_str().unwrap_or(""),
        "{err}"
    );
    let mut response = error_page(err.status(), &format!("Application error: {err}."));
    response.extensions_mut().insert(RouterCode(err.code()));
    if matches!(err, WebError::Overloaded(_) | WebError::Unavailable(_)) {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Response extension: the router answered instead of the app, with this
/// Heroku error code.
#[derive(Debug, Clone, Copy)]
struct RouterCode(&'static str);

/// The access record of a request, before it is answered.
fn record(
    app: &str,
    req: &hyper::Request<Incoming>,
    host: Option<&str>,
    request_id: &HeaderValue,
) -> Access {
    let forwarded_for = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Access::arrived(
        app,
        req.method().clone(),
        req.uri().path_and_query().map_or("/", |p| p.as_str()),
        host.unwrap_or(""),
        request_id.to_str().unwrap_or(""),
        forwarded_for,
    )
}

/// A plain-text error response with a clear message.
pub fn error_page(status: StatusCode, message: &str) -> hyper::Response<BoxBody> {
    crate::respond::text(status, message)
}
