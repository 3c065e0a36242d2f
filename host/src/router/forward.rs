//! Forwarding between cluster nodes: a request for an app with no replica
//! on this node goes to a node that runs some — the one with the fewest
//! requests outstanding from here per replica, so load spreads like it
//! does across local replicas.
//!
//! A forwarded request carries [`HOP`] (the forwarding node's name); the
//! node that gets it serves it itself, never forwards it again, and
//! answers which replica served it in [`DYNO`] and [`NODE`], which the
//! forwarding node takes off the answer for its access log
//! (`dyno=web.2 node=n3`).
//!
//! Connections to peers are kept open and reused (HTTP/1.1). A peer that
//! cannot be connected to (a node that died and is not out of the
//! placement yet) is skipped for the next one: nothing has been sent, so
//! the request loses nothing. A peer that fails after the request went
//! out fails that request (it may have run).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::table::Peer;
use crate::runtime::{BoxBody, BoxError};

/// On a forwarded request: the forwarding node's name.
pub(crate) const HOP: &str = "x-wpaas-hop";
/// On the answer to a forwarded request: the replica that served it.
pub(crate) const DYNO: &str = "x-wpaas-dyno";
/// On the answer to a forwarded request: the node that served it.
pub(crate) const NODE: &str = "x-wpaas-node";

/// How long connecting to a peer may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections kept per peer.
const MAX_IDLE: usize = 64;

/// Where a forwarded request was served.
#[derive(Debug, Clone)]
pub(crate) struct ServedOn {
    /// The node.
    pub node: String,
    /// The replica (`web.2`), if the node said.
    pub dyno: Option<String>,
}

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// No peer could be connected to; the request was not sent, and is
    /// given back.
    #[error("no node serving the app could be reached ({1})")]
    Unreachable(Box<hyper::Request<Incoming>>, String),
    /// The peer failed after the request was sent.
    #[error("the node {node} serving the app failed: {source}")]
    Failed {
        node: String,
        #[source]
        source: hyper::Error,
    },
}

/// Connections to the other nodes' routers.
#[derive(Default)]
pub(crate) struct Forwarder {
    links: Mutex<HashMap<SocketAddr, Arc<Link>>>,
}

/// One peer's connections and the requests outstanding on it from here.
#[derive(Default)]
struct Link {
    outstanding: AtomicUsize,
    idle: Mutex<Vec<SendRequest<Incoming>>>,
}

/// Counts a request outstanding on a link until dropped (with the body).
struct Outstanding(Arc<Link>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Forwarder {
    fn link(&self, addr: SocketAddr) -> Arc<Link> {
        self.links
            .lock()
            .expect("links")
            .entry(addr)
            .or_default()
            .clone()
    }

    /// Sends `req` to the least loaded of `peers` that can be reached,
    /// marked as forwarded by `from`.
    pub(crate) async fn forward(
        &self,
        mut req: hyper::Request<Incoming>,
        peers: &[Peer],
        from: &str,
    ) -> Result<hyper::Response<BoxBody>, ForwardError> {
        if let Ok(value) = http::HeaderValue::from_str(from) {
            req.headers_mut().insert(HOP, value);
        }
        let mut order: Vec<(&Peer, Arc<Link>)> =
            peers.iter().map(|p| (p, self.link(p.router))).collect();
        // Fewest outstanding per replica first (cross-multiplied).
        order.sort_by_key(|(peer, link)| {
            let load = link.outstanding.load(Ordering::Relaxed) as u64;
            (load * 1_000_000) / peer.replicas.max(1) as u64
        });
        let mut last_error = String::from("no peers");
        for (peer, link) in order {
            // A kept connection may have died with its node a moment ago:
            // the request comes back unsent, and goes on a new connection
            // (which fails to connect if the node is gone).
            for _ in 0..3 {
                let sender = match link.take_or_connect(peer.router).await {
                    Ok(sender) => sender,
                    Err(err) => {
                        tracing::warn!(node = %peer.node, "could not reach {}: {err}", peer.router);
                        last_error = format!("{}: {err}", peer.node);
                        break;
                    }
                };
                match send(sender, req, peer, link.clone()).await {
                    Outcome::Answered(response) => return Ok(response),
                    Outcome::Failed(source) => {
                        return Err(ForwardError::Failed {
                            node: peer.node.clone(),
                            source,
                        })
                    }
                    Outcome::Unsent(back, why) => {
                        last_error = format!("{}: {why}", peer.node);
                        req = back;
                    }
                }
            }
        }
        Err(ForwardError::Unreachable(Box::new(req), last_error))
    }
}

impl Link {
    /// An idle connection ready for a request, or a new one.
    async fn take_or_connect(&self, addr: SocketAddr) -> std::io::Result<SendRequest<Incoming>> {
        {
            let mut idle = self.idle.lock().expect("idle links");
            idle.retain(|s| !s.is_closed());
            if let Some(at) = idle.iter().position(|s| s.is_ready()) {
                return Ok(idle.swap_remove(at));
            }
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!("peer connection ended: {err}");
            }
        });
        Ok(sender)
    }

    fn put_back(&self, sender: SendRequest<Incoming>) {
        let mut idle = self.idle.lock().expect("idle links");
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }
}

/// What became of a request sent on one connection.
enum Outcome {
    Answered(hyper::Response<BoxBody>),
    /// It was not written (the connection was closed): here it is back.
    Unsent(hyper::Request<Incoming>, hyper::Error),
    /// It failed after it was written: it may have run.
    Failed(hyper::Error),
}

async fn send(
    mut sender: SendRequest<Incoming>,
    req: hyper::Request<Incoming>,
    peer: &Peer,
    link: Arc<Link>,
) -> Outcome {
    link.outstanding.fetch_add(1, Ordering::Relaxed);
    let outstanding = Outstanding(link.clone());
    let answer = sender.try_send_request(req).await;
    let mut response = match answer {
        Ok(response) => {
            // Ready again once this answer's body is read; taken only then.
            link.put_back(sender);
            response
        }
        Err(mut err) => {
            return match err.take_message() {
                Some(req) => Outcome::Unsent(req, err.into_error()),
                None => Outcome::Failed(err.into_error()),
            }
        }
    };
    let headers = response.headers_mut();
    let node = headers
        .remove(NODE)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .unwrap_or_else(|| peer.node.clone());
    let dyno = headers
        .remove(DYNO)
        .and_then(|v| v.to_str().ok().map(str::to_owned));
    let mut response = response.map(move |body| {
        body.map_err(BoxError::from)
            .map_frame(move |frame| {
                // Counted until the body is read or dropped.
                let _counted = &outstanding;
                frame
            })
            .boxed_unsync()
    });
    response.extensions_mut().insert(ServedOn { node, dyno });
    Outcome::Answered(response)
}
