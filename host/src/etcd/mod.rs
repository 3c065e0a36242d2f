//! One connection to the cluster's etcd, shared by everything a node keeps
//! there (the control store, app data, later the node registry).
//!
//! An [`Etcd`] handle is three things:
//!
//! * a client on a **runtime of its own** (one thread), so that the store
//!   traits, which are synchronous, can call it from anywhere:
//!   [`Etcd::block_on`] spawns a future there and waits for its result —
//!   from an async worker (through [`off_worker`]), a current-thread
//!   runtime, a blocking task or a plain thread alike;
//! * a **key prefix** (`/wpaas/` for a server) that every key of this node's
//!   cluster lives under: [`Etcd::key`] prepends it;
//! * a **lease** granted at connect (TTL [`DEFAULT_LEASE_TTL`] unless told)
//!   and kept alive by a background task: keys attached to it vanish when
//!   the node dies, within the TTL. Dropping the handle revokes it, so a
//!   node that stops cleanly frees its keys at once. If the lease expires
//!   anyway (etcd unreachable longer than the TTL) a new one is granted and
//!   [`Etcd::lease`] returns the new id; what was attached to the old one is
//!   gone, as for a dead node.
//!
//! Every request has a timeout ([`REQUEST_TIMEOUT`]): with etcd down, calls
//! fail with [`EtcdError::Unreachable`] instead of hanging.

pub mod testing;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, KeyValue, Txn, TxnResponse};

use crate::control::store::off_worker;

/// The lease TTL when none is given: a dead node's keys expire this long
/// after its last keep-alive.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

/// How long one request may take before it fails as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening a TCP connection to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of the connection. The store and the data engine turn them into
/// their own errors; [`EtcdError::Unreachable`] stays distinct so a server
/// can say "etcd is down" rather than "database error".
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered (refused, timed out, connection lost).
    #[error("the cluster store at {endpoints} is unreachable ({reason}); check that etcd runs there and that --cluster names its client URL")]
    Unreachable {
        /// The endpoints, comma-separated, as given to [`Etcd::connect`].
        endpoints: String,
        /// What the client said.
        reason: String,
    },
    /// etcd answered with an error (a request too large, too many
    /// operations in one transaction, ...).
    #[error("etcd refused the request: {0}")]
    Request(String),
    /// The endpoints or the options are not usable.
    #[error("invalid cluster store settings: {0}")]
    Invalid(String),
}

/// A connection to etcd with its own runtime, key prefix and lease. Cheap
/// to clone (clones share the connection and the lease); the lease is
/// revoked when the last clone drops.
#[derive(Clone)]
pub struct Etcd {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    endpoints: String,
    prefix: Vec<u8>,
    lease: Arc<AtomicI64>,
    ttl: Duration,
    keep_alive: tokio::task::JoinHandle<()>,
    /// Whether dropping revokes the lease (not after [`Etcd::crash`]).
    revoke: AtomicBool,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.inner.endpoints)
            .field("prefix", &String::from_utf8_lossy(&self.inner.prefix))
            .field("lease", &self.lease())
            .finish()
    }
}

impl Etcd {
    /// Connects to `endpoints` (`http://host:port`), grants this handle's
    /// lease (`lease_ttl`, whole seconds, at least 1) and starts keeping it
    /// alive. Keys go under `prefix` (e.g. `/wpaas/`). Fails with
    /// [`EtcdError::Unreachable`] if no endpoint answers.
    pub fn connect(
        endpoints: &[String],
        prefix: &str,
        lease_ttl: Duration,
    ) -> Result<Etcd, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::Invalid("no etcd endpoint given".into()));
        }
        let joined = endpoints.join(",");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd")
            .enable_all()
            .build()
            .map_err(|e| EtcdError::Invalid(format!("could not start the etcd runtime: {e}")))?;
        let ttl = Duration::from_secs(lease_ttl.as_secs().max(1));
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        let eps = endpoints.to_vec();
        let connected = off_worker(|| {
            wait(&runtime, async move {
                let mut client = Client::connect(eps, Some(options)).await?;
                // The first request: it is what finds out whether etcd answers.
                let lease = client.lease_grant(ttl.as_secs() as i64, None).await?;
                Ok::<_, etcd_client::Error>((client, lease.id()))
            })
        });
        let (client, lease) = match connected {
            Ok(connected) => connected,
            Err(e) => {
                // Dropping a runtime blocks, which panics inside another
                // runtime (a server connects from one); this does not.
                runtime.shutdown_background();
                return Err(classify(&joined, e));
            }
        };
        let lease = Arc::new(AtomicI64::new(lease));
        let keeper = runtime.spawn(keep_alive(client.clone(), lease.clone(), ttl));
        Ok(Etcd {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                client,
                endpoints: joined,
                prefix: prefix.as_bytes().to_vec(),
                lease,
                ttl,
                keep_alive: keeper,
                revoke: AtomicBool::new(true),
            }),
        })
    }

    /// Runs `f(client)` on the connection's runtime and waits for it. Use
    /// it from synchronous code anywhere (it steps off an async worker
    /// first); async code may `.await` the client directly instead.
    /// Errors are classified ([`EtcdError::Unreachable`] when etcd did not
    /// answer).
    pub fn block_on<T, F, Fut>(&self, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let fut = f(self.inner.client.clone());
        off_worker(|| wait(self.runtime(), fut)).map_err(|e| self.error(e))
    }

    /// A clone of the client (it is a handle on the shared channel), for
    /// async code and for long-lived streams such as watches. Spawn those
    /// on [`Etcd::runtime`] or any runtime of your own.
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// The connection's runtime (to spawn watch loops on).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.inner
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the handle")
            .handle()
    }

    /// This handle's lease id (it changes only if the lease expired and was
    /// granted anew; see the module docs).
    pub fn lease(&self) -> i64 {
        self.inner.lease.load(Ordering::SeqCst)
    }

    /// The lease's TTL.
    pub fn lease_ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The key prefix, e.g. `/wpaas/`.
    pub fn prefix(&self) -> &[u8] {
        &self.inner.prefix
    }

    /// `prefix + suffix`: the full etcd key of `suffix`.
    pub fn key(&self, suffix: impl AsRef<[u8]>) -> Vec<u8> {
        let mut k = self.inner.prefix.clone();
        k.extend_from_slice(suffix.as_ref());
        k
    }

    /// The endpoints, comma-separated (for messages).
    pub fn endpoints(&self) -> &str {
        &self.inner.endpoints
    }

    /// The key-value of `key` (a full key, see [`Etcd::key`]), if any.
    pub fn get(&self, key: Vec<u8>) -> Result<Option<KeyValue>, EtcdError> {
        let mut resp = self.block_on(|mut c| async move { c.get(key, None).await })?;
        Ok(resp.take_kvs().into_iter().next())
    }

    /// Every key-value under `prefix` (a full key), in key order.
    pub fn get_prefix(&self, prefix: Vec<u8>) -> Result<Vec<KeyValue>, EtcdError> {
        let options = GetOptions::new().with_prefix();
        let mut resp = self.block_on(|mut c| async move { c.get(prefix, Some(options)).await })?;
        Ok(resp.take_kvs())
    }

    /// Runs a transaction.
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse, EtcdError> {
        self.block_on(|mut c| async move { c.txn(txn).await })
    }

    /// For tests: behave from now on as a node that died — the lease is no
    /// longer kept alive, and it is not revoked on drop, so it expires
    /// after its TTL. Requests still work.
    #[doc(hidden)]
    pub fn crash(&self) {
        self.inner.keep_alive.abort();
        self.inner.revoke.store(false, Ordering::SeqCst);
    }

    /// Turns a client error into an [`EtcdError`] naming these endpoints.
    pub fn error(&self, e: etcd_client::Error) -> EtcdError {
        classify(&self.inner.endpoints, e)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if !self.revoke.load(Ordering::SeqCst) {
            runtime.shutdown_background();
            return;
        }
        // Revoke so the keys held by this handle go now rather than after
        // the TTL; best effort (etcd may be down), and bounded.
        let mut client = self.client.clone();
        let id = self.lease.load(Ordering::SeqCst);
        let revoke = async move {
            tokio::time::timeout(Duration::from_secs(2), client.lease_revoke(id)).await
        };
        let _ = off_worker(|| wait(&runtime, revoke));
        // Dropping a runtime blocks, which panics inside another runtime;
        // this does not.
        runtime.shutdown_background();
    }
}

/// Runs `fut` on `runtime` and blocks this thread until it is done. The
/// caller is not on `runtime` (its worker is its own thread), so this
/// cannot deadlock; on an async worker call it through [`off_worker`].
fn wait<T: Send + 'static>(
    runtime: &impl SpawnOn,
    fut: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::sync_channel(1);
    runtime.spawn_on(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .expect("the etcd runtime ran the request to its end")
}

/// A runtime or a handle on one.
trait SpawnOn {
    fn spawn_on(&self, fut: impl Future<Output = ()> + Send + 'static);
}

impl SpawnOn for tokio::runtime::Runtime {
    fn spawn_on(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.spawn(fut);
    }
}

impl SpawnOn for tokio::runtime::Handle {
    fn spawn_on(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.spawn(fut);
    }
}

/// Keeps `lease` alive, every third of `ttl`, for as long as the runtime
/// runs. Reconnects the stream when it breaks; grants a new lease if the
/// old one expired meanwhile.
async fn keep_alive(mut client: Client, lease: Arc<AtomicI64>, ttl: Duration) {
    let period = ttl / 3;
    loop {
        let id = lease.load(Ordering::SeqCst);
        match client.lease_keep_alive(id).await {
            Ok((mut keeper, mut stream)) => loop {
                tokio::time::sleep(period).await;
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match stream.message().await {
                    Ok(Some(resp)) if resp.ttl() > 0 => {}
                    Ok(Some(_)) => {
                        regrant(&mut client, &lease, ttl).await;
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            },
            // "lease not found": it expired while etcd was out of reach.
            Err(etcd_client::Error::LeaseKeepAliveError(_)) => {
                regrant(&mut client, &lease, ttl).await;
            }
            Err(e) => {
                tracing::debug!("etcd lease keep-alive: {e}");
                tokio::time::sleep(period.min(Duration::from_secs(1))).await;
            }
        }
    }
}

/// Grants a new lease in place of one that expired.
async fn regrant(client: &mut Client, lease: &AtomicI64, ttl: Duration) {
    match client.lease_grant(ttl.as_secs() as i64, None).await {
        Ok(resp) => {
            let old = lease.swap(resp.id(), Ordering::SeqCst);
            tracing::warn!(
                "etcd lease {old:x} expired (etcd was out of reach); what it held is gone; new lease {:x}",
                resp.id()
            );
        }
        Err(e) => {
            tracing::debug!("etcd lease grant: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Whether a client error means etcd did not answer.
fn classify(endpoints: &str, e: etcd_client::Error) -> EtcdError {
    use etcd_client::Error as E;
    use tonic::Code;
    let unreachable = |reason: String| EtcdError::Unreachable {
        endpoints: endpoints.to_string(),
        reason,
    };
    match e {
        E::TransportError(e) => unreachable(e.to_string()),
        E::IoError(e) => unreachable(e.to_string()),
        E::GRpcStatus(s) => match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                unreachable(s.message().to_string())
            }
            _ => EtcdError::Request(s.message().to_string()),
        },
        E::InvalidArgs(m) | E::EndpointError(m) => EtcdError::Invalid(m),
        E::InvalidUri(e) => EtcdError::Invalid(e.to_string()),
        e => EtcdError::Request(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use etcd_client::{GetOptions, PutOptions};

    use super::testing::{shared, unique_prefix};
    use super::*;

    fn connect(name: &str) -> Etcd {
        Etcd::connect(
            &shared().endpoints(),
            &unique_prefix(name),
            DEFAULT_LEASE_TTL,
        )
        .expect("connect to the test etcd")
    }

    /// A put then a get of `k` through the sync bridge.
    fn round_trip(etcd: &Etcd, k: &str) -> Vec<u8> {
        let key = etcd.key(k);
        let k2 = key.clone();
        etcd.block_on(|mut c| async move { c.put(k2, "v", None).await })
            .unwrap();
        let got = etcd
            .block_on(|mut c| async move { c.get(key, None).await })
            .unwrap();
        got.kvs()[0].value().to_vec()
    }

    #[test]
    fn the_bridge_works_from_every_kind_of_thread() {
        let etcd = connect("bridge");
        assert_eq!(round_trip(&etcd, "plain"), b"v");
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let e = etcd.clone();
        let on_worker = multi.block_on(async move {
            tokio::spawn(async move { round_trip(&e, "worker") })
                .await
                .unwrap()
        });
        assert_eq!(on_worker, b"v");
        let e = etcd.clone();
        let blocking = multi.block_on(async move {
            tokio::task::spawn_blocking(move || round_trip(&e, "blocking"))
                .await
                .unwrap()
        });
        assert_eq!(blocking, b"v");
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = etcd.clone();
        assert_eq!(
            current.block_on(async move { round_trip(&e, "current") }),
            b"v"
        );
        let e = etcd.clone();
        let thread = std::thread::spawn(move || round_trip(&e, "thread"));
        assert_eq!(thread.join().unwrap(), b"v");
        // The last handle may drop on an async worker, too.
        multi.block_on(async move { drop(etcd) });
    }

    #[test]
    fn keys_on_the_lease_go_when_the_handle_drops() {
        let etcd = connect("lease");
        let watcher = connect("lease-watcher");
        let key = etcd.key("held");
        let lease = etcd.lease();
        let k = key.clone();
        etcd.block_on(move |mut c| async move {
            c.put(k, "x", Some(PutOptions::new().with_lease(lease)))
                .await
        })
        .unwrap();
        let count = |key: Vec<u8>| {
            watcher
                .block_on(|mut c| async move {
                    c.get(key, Some(GetOptions::new().with_count_only())).await
                })
                .unwrap()
                .count()
        };
        assert_eq!(count(key.clone()), 1);
        // Outlives several keep-alive periods.
        let short = Etcd::connect(
            &shared().endpoints(),
            &unique_prefix("short"),
            Duration::from_secs(1),
        )
        .unwrap();
        let k = short.key("kept");
        let lease = short.lease();
        let k2 = k.clone();
        short
            .block_on(move |mut c| async move {
                c.put(k2, "x", Some(PutOptions::new().with_lease(lease)))
                    .await
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(count(k.clone()), 1, "the keep-alive holds the lease");
        drop(short);
        assert_eq!(count(k), 0, "dropping the handle revokes its lease");
        drop(etcd);
        assert_eq!(count(key), 0);
    }

    #[test]
    fn an_unreachable_etcd_is_named_with_a_hint() {
        // A port nothing listens on (bound, read, let go).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = Etcd::connect(std::slice::from_ref(&url), "/x/", DEFAULT_LEASE_TTL).unwrap_err();
        assert!(matches!(err, EtcdError::Unreachable { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&url), "{message}");
        assert!(message.contains("check that etcd runs there"), "{message}");
        // From async code too (a server connects on its runtime).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(async move { Etcd::connect(&[url], "/x/", DEFAULT_LEASE_TTL) })
            .unwrap_err();
        assert!(matches!(err, EtcdError::Unreachable { .. }), "{err:?}");
    }

    #[test]
    fn requests_fail_while_etcd_is_down_and_work_when_it_is_back() {
        let mut server = testing::EtcdServer::start_new();
        let etcd = Etcd::connect(&server.endpoints(), "/outage/", DEFAULT_LEASE_TTL).unwrap();
        assert_eq!(round_trip(&etcd, "before"), b"v");
        server.stop();
        let key = etcd.key("during");
        let err = etcd
            .block_on(|mut c| async move { c.put(key, "v", None).await })
            .unwrap_err();
        assert!(matches!(err, EtcdError::Unreachable { .. }), "{err:?}");
        server.start();
        // The channel reconnects by itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let key = etcd.key("after");
            match etcd.block_on(|mut c| async move { c.put(key, "v", None).await }) {
                Ok(_) => break,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("etcd is back but requests fail: {e}"),
            }
        }
        assert_eq!(round_trip(&etcd, "before"), b"v", "the data survived");
    }
}
