//! The router: one HTTP front door for every app.

mod forwarded;
mod server;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::runtime::{BoxBody, CgiContext, WebError};

pub use forwarded::REQUEST_ID;
pub use server::{serve, ServeOptions};
pub use table::{AppRoute, RouteTable};

/// Routes requests to apps by Host header.
pub struct Router {
    table: Arc<RouteTable>,
}

impl Router {
    /// A router over `table`.
    pub fn new(table: Arc<RouteTable>) -> Self {
        Self { table }
    }

    /// The routing table (shared with whoever activates releases).
    pub fn table(&self) -> &Arc<RouteTable> {
        &self.table
    }

    /// Handles one request from `remote` that arrived on `local`.
    pub async fn handle(
        &self,
        mut req: hyper::Request<Incoming>,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> hyper::Response<BoxBody> {
        let request_id = forwarded::annotate(req.headers_mut(), remote, local);
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())
            .map(str::to_owned);
        let mut response = match self.table.lookup(host.as_deref()) {
            None => error_page(
                StatusCode::NOT_FOUND,
                &format!(
                    "No such app for host `{}`. Apps answer at http://APP.localhost.",
                    host.as_deref().unwrap_or("")
                ),
            ),
            Some(app) => match &app.web {
                None => {
                    tracing::warn!(app = %app.name, code = "H14", "no web processes running");
                    error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "No web processes running for this app.",
                    )
                }
                Some(web) => {
                    let cgi = CgiContext { remote, local };
                    match web.serve(req, &cgi).await {
                        Ok(response) => response,
                        Err(err) => failure_page(&app.name, &err, &request_id),
                    }
                }
            },
        };
        response.headers_mut().insert(REQUEST_ID, request_id);
        response
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
    if matches!(err, WebError::Overloaded(_) | WebError::Unavailable(_)) {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A plain-text error response with a clear message.
pub fn error_page(status: StatusCode, message: &str) -> hyper::Response<BoxBody> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
