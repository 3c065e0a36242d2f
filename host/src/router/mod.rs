//! The router: one HTTP front door for every app.

mod access;
mod forward;
mod forwarded;
mod pages;
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
pub use table::{AppRoute, Peer, RouteTable};

/// Routes requests to apps by Host header.
pub struct Router {
    table: Arc<RouteTable>,
    observer: Option<Arc<dyn Observer>>,
    /// This node's name, in a cluster: requests for apps it runs no
    /// replica of go to the nodes that do.
    node: Option<String>,
    forwarder: forward::Forwarder,
}

impl Router {
    /// A router over `table`.
    pub fn new(table: Arc<RouteTable>) -> Self {
        Self {
            table,
            observer: None,
            node: None,
            forwarder: forward::Forwarder::default(),
        }
    }

    /// Makes this router node `name`'s in a cluster: it forwards requests
    /// for apps without a local replica to the nodes the table names, and
    /// access lines say `node=`.
    pub fn in_cluster(mut self, name: &str) -> Self {
        self.node = Some(name.to_string());
        self
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
            None => pages::no_such_app(&request_id),
            Some(app) => {
                if let Some(observer) = &self.observer {
                    let access = record(&app.name, &req, host.as_deref(), &request_id);
                    unanswered = Some(access::Unanswered::new(observer.clone(), access, started));
                }
                if self.table.in_maintenance(&app.name) {
                    // Heroku's H80: the app's own code is not asked.
                    let mut page = pages::maintenance(&request_id);
                    page.extensions_mut().insert(RouterCode("H80"));
                    page
                } else {
                    let cgi = CgiContext { remote, local };
                    self.dispatch(app, req, &cgi, &request_id).await
                }
            }
        };
        response.headers_mut().insert(REQUEST_ID, request_id);
        let Some(unanswered) = unanswered else {
            return response;
        };
        let served_by = response.extensions().get::<ServedBy>().cloned();
        let served_on = response.extensions().get::<forward::ServedOn>().cloned();
        let code = response.extensions().get::<RouterCode>().map(|c| c.0);
        unanswered.answered(response, |access| {
            access.node = self.node.clone();
            if let Some(served_by) = served_by {
                access.dyno = Some(served_by.replica);
                access.connect = served_by.connect;
            }
            if let Some(served_on) = served_on {
                access.dyno = served_on.dyno;
                access.node = Some(served_on.node);
            }
            access.code = code;
        })
    }
}

impl Router {
    /// Serves `req` on a local replica of `app`, or, in a cluster, forwards
    /// it to a node that runs one. When every such node is unreachable (one
    /// died and placement has not moved its replicas yet), the request
    /// waits for a replica here or a reachable one there, up to
    /// [`FORWARD_PATIENCE`]: it was not sent, so it can still be served.
    async fn dispatch(
        &self,
        mut app: Arc<AppRoute>,
        mut req: hyper::Request<Incoming>,
        cgi: &CgiContext,
        request_id: &HeaderValue,
    ) -> hyper::Response<BoxBody> {
        let hop = req.headers().get(forward::HOP).is_some();
        let waited = Instant::now();
        // Once a peer was unreachable, the request waits for the placement
        // to move (a replica may be loading here); so does one a peer
        // forwarded here, where the placement put a replica.
        let mut waiting = hop;
        loop {
            let here = app.web.clone().filter(|web| web.replica_count() > 0);
            let peers = match (&self.node, &here, hop) {
                (Some(_), None, false) => self.table.peers(&app.name),
                _ => None,
            };
            match (peers, &app.web) {
                (Some(peers), _) => {
                    let from = self.node.as_deref().unwrap_or("");
                    match self.forwarder.forward(req, &peers, from).await {
                        Ok(response) => return response,
                        Err(forward::ForwardError::Failed { node, source }) => {
                            tracing::warn!(
                                app = %app.name,
                                code = "H13",
                                request_id = request_id.to_str().unwrap_or(""),
                                "node {node} failed: {source}"
                            );
                            let mut page =
                                pages::application_error(StatusCode::BAD_GATEWAY, request_id);
                            page.extensions_mut().insert(RouterCode("H13"));
                            return page;
                        }
                        Err(forward::ForwardError::Unreachable(back, why)) => {
                            tracing::debug!(app = %app.name, "{why}");
                            req = *back;
                            waiting = true;
                        }
                    }
                }
                (None, Some(web)) => {
                    let mut response = match web.serve(req, cgi).await {
                        Ok(response) => response,
                        Err(err) => failure_page(&app.name, &err, request_id),
                    };
                    if let (true, Some(node)) = (hop, &self.node) {
                        tell_forwarder(&mut response, node);
                    }
                    return response;
                }
                (None, None) if !waiting => {
                    return no_web(&app.name, "No web processes running", request_id)
                }
                (None, None) => {}
            }
            // Waiting: look again shortly, with the table as it is then.
            if waited.elapsed() > FORWARD_PATIENCE {
                return no_web(&app.name, "No web processes reachable", request_id);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            match self.table.app(&app.name) {
                Some(fresh) => app = fresh,
                None => return no_web(&app.name, "No web processes running", request_id),
            }
        }
    }
}

/// How long a request waits for a reachable replica in a cluster (a dead
/// node's replicas are placed elsewhere within its lease's TTL).
const FORWARD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Heroku's H14: no web process to send the request to.
fn no_web(app: &str, why: &str, request_id: &HeaderValue) -> hyper::Response<BoxBody> {
    tracing::warn!(
        app,
        code = "H14",
        request_id = request_id.to_str().unwrap_or(""),
        "{why}"
    );
    let mut page = pages::application_error(StatusCode::SERVICE_UNAVAILABLE, request_id);
    page.extensions_mut().insert(RouterCode("H14"));
    page
}

/// Tells the node that forwarded a request which replica of this node
/// served it.
fn tell_forwarder(response: &mut hyper::Response<BoxBody>, node: &str) {
    let dyno = response
        .extensions()
        .get::<ServedBy>()
        .and_then(|s| HeaderValue::from_str(&s.replica).ok());
    let headers = response.headers_mut();
    if let Some(dyno) = dyno {
        headers.insert(forward::DYNO, dyno);
    }
    if let Ok(node) = HeaderValue::from_str(node) {
        headers.insert(forward::NODE, node);
    }
}

/// The answer to a request the app did not answer. The client learns only
/// what a visitor may (the request id; for its own request's faults, what
/// was wrong with it); the cause goes to the server's log, and a crash's or
/// timeout's also to the app's (`runtime/failure_log.rs`).
fn failure_page(app: &str, err: &WebError, request_id: &HeaderValue) -> hyper::Response<BoxBody> {
    tracing::warn!(
        app,
        code = err.code(),
        request_id = request_id.to_str().unwrap_or(""),
        "{err}"
    );
    let mut response = match err {
        // The client's own request was at fault (too large, too slow):
        // it is told what, which shows nothing of the server.
        WebError::BadRequest(status, why) => error_page(*status, &format!("Bad request: {why}.")),
        _ => pages::application_error(err.status(), request_id),
    };
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
