//! The accept loop both listeners run: caps per listener and per client
//! address, eviction of the longest-quiet connection when full, back-off
//! and one log line a second when accept() fails, TLS, and a drain on
//! shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::conn::{watchdog, Activity, GuardedBody, Verdict, WatchedIo};
use super::ip_slots::{IpSlot, IpSlots};
use super::throttle::{suppressed_note, Backoff, LogGate};
use super::Limits;
use crate::runtime::BoxBody;

/// One listener's settings.
#[derive(Clone)]
pub(crate) struct Edge {
    /// What the listener serves, for log lines ("router", "API").
    pub name: &'static str,
    /// Caps and timeouts.
    pub limits: Limits,
    /// Serve HTTPS with this configuration instead of plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// After the shutdown signal, how long in-flight requests may take.
    pub grace: Duration,
}

impl Edge {
    /// A plain-HTTP listener with default limits and a 30 s grace period.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            limits: Limits::default(),
            tls: None,
            grace: Duration::from_secs(30),
        }
    }
}

/// Where a request came from and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    /// The client's address.
    pub remote: SocketAddr,
    /// The address it connected to.
    pub local: SocketAddr,
    /// Whether it came over TLS.
    pub secure: bool,
}

/// Request extension: the request came over TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Secure;

/// A quiet connection younger than this is not evicted: a client that has
/// just connected gets that long to start its request.
const MIN_EVICTABLE_QUIET: Duration = Duration::from_millis(250);

/// How long an idle or evicted connection may take to close politely.
const CLOSE_POLITELY: Duration = Duration::from_secs(1);

/// Serves `handler` on `listener` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish for up to `edge.grace`, and
/// returns.
pub(crate) async fn serve<H, Fut>(
    listener: TcpListener,
    edge: Edge,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(hyper::Request<Incoming>, Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = hyper::Response<BoxBody>> + Send + 'static,
{
    let local = listener.local_addr()?;
    let (stop_tx, stop) = watch::channel(false);
    let max = edge.limits.max_connections.max(1);
    let shared = Arc::new(Shared {
        local,
        builder: http_builder(&edge.limits),
        tls: edge.tls.clone().map(tokio_rustls::TlsAcceptor::from),
        slots: Arc::new(Semaphore::new(max)),
        ips: Arc::new(IpSlots {
            max: edge.limits.max_connections_per_ip,
            counts: Mutex::default(),
        }),
        open: Mutex::default(),
        next_id: AtomicU64::new(0),
        stop,
        handler,
        edge,
    });
    let name = shared.edge.name;
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    let mut accept_errors = LogGate::new(Duration::from_secs(1));
    let mut refused = LogGate::new(Duration::from_secs(1));
    let mut full = LogGate::new(Duration::from_secs(1));
    tokio::pin!(shutdown);
    'accept: loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff.succeeded();
                    conn
                }
                Err(err) if per_connection(&err) => continue,
                Err(err) => {
                    // EMFILE, ENFILE, ENOBUFS: the process or the machine is
                    // out of something; retrying at once would spin (and
                    // log) millions of times a second.
                    let delay = backoff.failed();
                    if let Some(held) = accept_errors.pass(Instant::now()) {
                        tracing::warn!(
                            "{name}: accept failed: {err}; retrying in {delay:?}{}",
                            suppressed_note(held)
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let ip = match shared.ips.take(remote.ip()) {
            Ok(ip) => ip,
            Err(open) => {
                if let Some(held) = refused.pass(Instant::now()) {
                    tracing::warn!(
                        "{name}: closed a connection from {}: it already has {open} open (--max-connections-per-ip){}",
                        remote.ip(),
                        suppressed_note(held)
                    );
                }
                drop(stream);
                continue;
            }
        };
        let slot = match shared.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if let Some(held) = full.pass(Instant::now()) {
                    tracing::warn!(
                        "{name}: {max} connections open (--max-connections); closing the longest-quiet ones for new clients{}",
                        suppressed_note(held)
                    );
                }
                tokio::select! {
                    slot = shared.wait_for_slot() => slot,
                    () = &mut shutdown => break 'accept,
                }
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move { shared.connection(stream, remote, slot, ip).await });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tracing::info!("{name}: shutting down: waiting for in-flight requests");
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(shared.edge.grace, shared.slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("{name}: grace period over; dropping remaining connections");
    }
    Ok(())
}

/// Errors of accept() that concern only the connection being accepted
/// (it was reset before we took it): take the next one at once.
fn per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog times request heads: hyper's timer would also close
        // keep-alive connections after the header timeout.
        .header_read_timeout(None)
        // A request head (line and headers) up to 64 KiB; bigger gets 431.
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(64 * 1024)
        // Pings find peers that vanished without closing.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

struct Shared<H> {
    edge: Edge,
    local: SocketAddr,
    handler: H,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    slots: Arc<Semaphore>,
    ips: Arc<IpSlots>,
    /// Open connections, for eviction.
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    stop: watch::Receiver<bool>,
}

impl<H, Fut> Shared<H>
where
    H: Fn(hyper::Request<Incoming>, Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = hyper::Response<BoxBody>> + Send + 'static,
{
    /// With every slot taken: closes the longest-quiet connection (idle
    /// between requests, or still sending a head) and takes its slot; when
    /// all are busy serving, waits for one to finish.
    async fn wait_for_slot(&self) -> OwnedSemaphorePermit {
        loop {
            self.evict_longest_quiet();
            tokio::select! {
                slot = self.slots.clone().acquire_owned() => {
                    return slot.expect("the semaphore is never closed");
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    fn evict_longest_quiet(&self) {
        let now = Instant::now();
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let longest = open
            .values()
            .filter_map(|a| a.quiet_since().map(|since| (since, a)))
            .filter(|(since, _)| now.saturating_duration_since(*since) >= MIN_EVICTABLE_QUIET)
            .min_by_key(|(since, _)| *since);
        if let Some((_, activity)) = longest {
            activity.evict();
        }
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        remote: SocketAddr,
        slot: OwnedSemaphorePermit,
        ip: Option<IpSlot>,
    ) {
        // Responses are written in one go by hyper; Nagle would only add
        // latency to small keep-alive responses.
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, activity.clone());
        let io = WatchedIo::new(stream, activity.clone(), slot, ip);
        let info = Connection {
            remote,
            local: self.local,
            secure: self.tls.is_some(),
        };
        let deadline = watchdog(activity.clone(), self.edge.limits.clone());
        tokio::pin!(deadline);
        match &self.tls {
            None => self.http(io, info, &activity, deadline).await,
            Some(acceptor) => {
                let mut stop = self.stop.clone();
                let handshake = tokio::select! {
                    tls = acceptor.accept(io) => tls,
                    verdict = &mut deadline => {
                        tracing::debug!("{}: TLS handshake from {remote}: {verdict:?}", self.edge.name);
                        Err(io::ErrorKind::TimedOut.into())
                    }
                    () = stopped(&mut stop) => Err(io::ErrorKind::Interrupted.into()),
                };
                match handshake {
                    Ok(tls) => {
                        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                            activity.set_h2();
                        }
                        self.http(tls, info, &activity, deadline).await;
                    }
                    Err(err) => {
                        tracing::debug!(
                            "{}: TLS handshake from {remote} failed: {err}",
                            self.edge.name
                        );
                    }
                }
            }
        }
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    async fn http<I>(
        self: &Arc<Self>,
        io: I,
        info: Connection,
        activity: &Arc<Activity>,
        mut deadline: std::pin::Pin<&mut impl Future<Output = Verdict>>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.clone();
        let activity_ = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let request = activity_.request_started();
            if info.secure {
                req.extensions_mut().insert(Secure);
            }
            let answer = (shared.handler)(req, info);
            async move {
                let response = answer.await;
                Ok::<_, Infallible>(response.map(|body| GuardedBody::new(body, request)))
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut stop = self.stop.clone();
        let mut draining = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(err) = done {
                        tracing::debug!("{}: connection from {} ended: {err}", self.edge.name, info.remote);
                    }
                    return;
                }
                verdict = &mut deadline => {
                    tracing::debug!("{}: closing the connection from {}: {verdict:?}", self.edge.name, info.remote);
                    if !verdict.abrupt() {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(CLOSE_POLITELY, conn.as_mut()).await;
                    }
                    return;
                }
                () = stopped(&mut stop), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Resolves once the listener is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard wait_for returns is not Send: drop it here.
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}
