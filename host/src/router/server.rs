//! The router's listener: the shared edge (caps, timeouts, TLS, graceful
//! shutdown) in front of [`Router::handle`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::Router;
use crate::edge::{self, Edge, Limits};

/// How the router listens and stops.
#[derive(Clone)]
pub struct ServeOptions {
    /// After the shutdown signal, how long in-flight requests may take.
    pub grace: Duration,
    /// Connection caps and timeouts.
    pub limits: Limits,
    /// Serve HTTPS (and tell apps `X-Forwarded-Proto: https`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(30),
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish for up to `options.grace`, and
/// returns.
pub async fn serve(
    listener: TcpListener,
    router: Arc<Router>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> std::io::Result<()> {
    let edge = Edge {
        name: "router",
        limits: options.limits,
        tls: options.tls,
        grace: options.grace,
    };
    edge::serve(
        listener,
        edge,
        move |req, conn| {
            let router = router.clone();
            async move { router.handle(req, conn.remote, conn.local).await }
        },
        shutdown,
    )
    .await
}
