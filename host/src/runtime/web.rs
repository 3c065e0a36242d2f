//! A web process type and its replicas.
//!
//! The compiled, linked code is shared; a replica (`web.1`, `web.2`, …) is a
//! unit of capacity: its own concurrency slots and queue (an [`Admission`]),
//! its own counters, and `DYNO=web.N` in its environment, as on Heroku.
//! Every request still runs in a fresh instance; the router sends it to the
//! replica with the fewest outstanding (running + queued) requests.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::admission::{Shares, Slot};
use super::body::Guarded;
use super::failure_log;
use super::output::ProcessLines;
use super::{
    Admission, BoxBody, CgiContext, HttpComponent, Limits, ProcessEnv, RequestBody, WagiModule,
    WebError,
};

/// The linked code of a web process.
pub(super) enum WebCode {
    Component(HttpComponent),
    Wagi(WagiModule),
}

struct Replica {
    /// `N` of `web.N`.
    number: usize,
    name: String,
    env: ProcessEnv,
    admission: Admission,
    served: AtomicU64,
    since: SystemTime,
    /// Requests in a row that ended in a trap.
    crashes_in_a_row: AtomicU32,
    /// Times this replica slot was replaced after crashing repeatedly.
    restarts: u32,
}

/// A replica whose requests trap this many times in a row is taken out of
/// rotation and replaced by a fresh one.
pub(crate) const CRASHES_BEFORE_REPLACE: u32 = 5;

/// Response extension naming the replica that answered, for the router's
/// access log.
#[derive(Debug, Clone)]
pub(crate) struct ServedBy {
    /// `web.2`.
    pub replica: String,
    /// How long the request waited for one of the replica's slots: the
    /// access log's `connect=` (on Heroku, the time to reach the dyno).
    pub connect: Duration,
}

/// What `ps` shows of one replica.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// `web.N`.
    pub name: String,
    /// Requests running or queued on it now.
    pub in_flight: usize,
    /// Requests it has admitted since it started.
    pub served: u64,
    /// When it started.
    pub since: SystemTime,
    /// Times it was replaced after repeated crashes.
    pub restarts: u32,
}

/// A loaded web process type: shared code, zero or more replicas.
///
/// The replica set can change while requests run (`ps:scale`, the
/// autoscaler): a request keeps the replica it was admitted to until it is
/// done. With zero replicas the code stays loaded; when waking is allowed
/// (autoscaling with a minimum of 0) the next request adds a replica, which
/// costs no compilation and no instance beyond the one every request gets.
pub struct WebProcess {
    code: Arc<WebCode>,
    env: ProcessEnv,
    limits: Limits,
    replicas: ArcSwap<Vec<Arc<Replica>>>,
    /// Serialises changes to the replica set.
    resize: Mutex<()>,
    /// Where the next search for the least busy replica starts, so that
    /// idle replicas take turns instead of `web.1` taking everything.
    next: AtomicUsize,
    /// A request finding no replica starts one.
    wake_from_zero: AtomicBool,
    /// Times a request woke the process from zero.
    wakes: AtomicU64,
    /// When the last request arrived (ms since `created`).
    last_request_ms: AtomicU64,
    created: Instant,
    events: OnceLock<Arc<dyn ProcessLines>>,
    /// The app's share of the instance pool; a new release takes over the
    /// one of the release it replaces ([`WebProcess::share_with`]).
    app_share: ArcSwap<tokio::sync::Semaphore>,
    /// The engine's instance pool.
    pool: Arc<tokio::sync::Semaphore>,
}

impl WebProcess {
    pub(super) fn new(
        code: WebCode,
        env: ProcessEnv,
        limits: Limits,
        replicas: usize,
        shares: Shares,
    ) -> Self {
        let process = Self {
            code: Arc::new(code),
            env,
            limits,
            replicas: ArcSwap::from_pointee(Vec::new()),
            resize: Mutex::new(()),
            next: AtomicUsize::new(0),
            wake_from_zero: AtomicBool::new(false),
            wakes: AtomicU64::new(0),
            last_request_ms: AtomicU64::new(0),
            created: Instant::now(),
            events: OnceLock::new(),
            app_share: ArcSwap::new(shares.app),
            pool: shares.pool,
        };
        process.set_replicas(replicas);
        process
    }

    fn replica(&self, n: usize) -> Replica {
        self.replica_with_restarts(n, 0)
    }

    fn replica_with_restarts(&self, n: usize, restarts: u32) -> Replica {
        let name = format!("web.{n}");
        let env = self.env.clone().for_process(&name);
        Replica {
            number: n,
            name,
            env,
            admission: Admission::new(self.limits.max_concurrency, self.limits.max_queue),
            served: AtomicU64::new(0),
            since: SystemTime::now(),
            crashes_in_a_row: AtomicU32::new(0),
            restarts,
        }
    }

    /// Counts this process's instances against `previous`'s share of the
    /// pool: the app's releases share one, so a release that is still
    /// draining and the one replacing it cannot hold twice the share.
    pub(crate) fn share_with(&self, previous: &WebProcess) {
        self.app_share.store(previous.app_share.load_full());
    }

    /// Where health events go (a replica replaced after crashing), as the
    /// replica they are about.
    pub(crate) fn set_events(&self, events: Arc<dyn ProcessLines>) {
        let _ = self.events.set(events);
    }

    /// Swaps `failing` for a fresh replica of the same name, if it is
    /// still in the set.
    fn replace(&self, failing: &Arc<Replica>, last: &WebError) {
        let _resize = self.resize.lock().expect("resize lock");
        let current = self.replicas.load_full();
        let Some(index) = current.iter().position(|r| Arc::ptr_eq(r, failing)) else {
            return;
        };
        let mut next = (*current).clone();
        next[index] = Arc::new(self.replica_with_restarts(failing.number, failing.restarts + 1));
        self.replicas.store(Arc::new(next));
        if let Some(events) = self.events.get() {
            events.process(&failing.name).line(&format!(
                "Replaced after {CRASHES_BEFORE_REPLACE} crashed requests in a row (last: {last})"
            ));
        }
    }

    /// Swaps the replica `web.N` for a fresh one of the same name
    /// (`ps:restart web.N`): new slots, queue and counters; the requests
    /// running on the old one finish there, the other replicas carry on.
    /// False when `web.N` is not running.
    pub(crate) fn restart_replica(&self, n: usize) -> bool {
        let _resize = self.resize.lock().expect("resize lock");
        let current = self.replicas.load_full();
        let Some(index) = current.iter().position(|r| r.number == n) else {
            return false;
        };
        let mut next = (*current).clone();
        next[index] = Arc::new(self.replica_with_restarts(n, current[index].restarts));
        self.replicas.store(Arc::new(next));
        true
    }

    /// Grows or shrinks the replica set in place: the first `count`
    /// replicas (and their counters) stay, new ones are added at the end.
    pub(crate) fn set_replicas(&self, count: usize) {
        let _resize = self.resize.lock().expect("resize lock");
        let current = self.replicas.load_full();
        let mut next: Vec<Arc<Replica>> = current.iter().take(count).cloned().collect();
        // New replicas take the lowest numbers not running.
        let mut n = 1;
        while next.len() < count {
            if !next.iter().any(|r| r.number == n) {
                next.push(Arc::new(self.replica(n)));
            }
            n += 1;
        }
        self.replicas.store(Arc::new(next));
    }

    /// Makes the replica set exactly `web.N` for each `N` of `numbers` (a
    /// cluster node runs the replicas placement gives it: `web.2`,
    /// `web.4`): replicas that stay keep their counters, the others stop
    /// taking requests (those they run finish), new ones are added.
    pub(crate) fn set_replica_numbers(&self, numbers: &[usize]) {
        let _resize = self.resize.lock().expect("resize lock");
        let current = self.replicas.load_full();
        let next: Vec<Arc<Replica>> = numbers
            .iter()
            .map(|&n| match current.iter().find(|r| r.number == n) {
                Some(kept) => kept.clone(),
                None => Arc::new(self.replica(n)),
            })
            .collect();
        self.replicas.store(Arc::new(next));
    }

    /// The numbers of the running replicas, in order.
    pub(crate) fn replica_numbers(&self) -> Vec<usize> {
        self.replicas.load().iter().map(|r| r.number).collect()
    }

    /// Whether a request that finds no replica starts one.
    pub(crate) fn set_wake_from_zero(&self, wake: bool) {
        self.wake_from_zero.store(wake, Ordering::Relaxed);
    }

    /// How many requests have woken this process from zero replicas.
    pub(crate) fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Time since the last request arrived (or since loading, if none).
    pub(crate) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_request_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// `"wasi:http component"` or `"WAGI module"`, for display.
    pub fn kind(&self) -> &'static str {
        match *self.code {
            WebCode::Component(_) => "wasi:http component",
            WebCode::Wagi(_) => "WAGI module",
        }
    }

    /// Number of replicas.
    pub(crate) fn replica_count(&self) -> usize {
        self.replicas.load().len()
    }

    /// Requests running or queued now, over all replicas.
    pub(crate) fn in_flight(&self) -> usize {
        self.replicas
            .load()
            .iter()
            .map(|r| r.admission.outstanding())
            .sum()
    }

    /// Live numbers of each replica.
    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .load()
            .iter()
            .map(|r| ReplicaStatus {
                name: r.name.clone(),
                in_flight: r.admission.outstanding(),
                served: r.served.load(Ordering::Relaxed),
                since: r.since,
                restarts: r.restarts,
            })
            .collect()
    }

    /// The replica with the fewest outstanding requests; ties go to the
    /// first one found from a rotating start. With none, wakes one if
    /// allowed.
    fn pick(&self) -> Option<Arc<Replica>> {
        let mut replicas = self.replicas.load_full();
        if replicas.is_empty() {
            if !self.wake_from_zero.load(Ordering::Relaxed) {
                return None;
            }
            {
                let _resize = self.resize.lock().expect("resize lock");
                if self.replicas.load().is_empty() {
                    self.replicas
                        .store(Arc::new(vec![Arc::new(self.replica(1))]));
                    self.wakes.fetch_add(1, Ordering::Relaxed);
                }
            }
            replicas = self.replicas.load_full();
        }
        let n = replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = &replicas[start];
        let mut best_load = best.admission.outstanding();
        for i in 1..n {
            if best_load == 0 {
                break;
            }
            let candidate = &replicas[(start + i) % n];
            let load = candidate.admission.outstanding();
            if load < best_load {
                (best, best_load) = (candidate, load);
            }
        }
        Some(best.clone())
    }

    /// Serves one request on the least busy replica: waits for one of its
    /// slots, takes a place in the app's share and the pool (or is refused
    /// at once), then runs a fresh instance. A declared body larger than
    /// the limit is refused before any of that.
    pub(crate) async fn serve<B: RequestBody>(
        &self,
        req: hyper::Request<B>,
        cgi: &CgiContext,
    ) -> Result<hyper::Response<BoxBody>, WebError> {
        self.last_request_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        let max_body = self.limits.max_request_body;
        if declared_length(&req).is_some_and(|length| length > max_body) {
            return Err(WebError::BadRequest(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {max_body} bytes"),
            ));
        }
        let request_id = failure_log::request_id(req.headers());
        let counted = req.extensions().get::<Uncounted>().is_none();
        let replica = self
            .pick()
            .ok_or_else(|| WebError::Unavailable("no web processes running".into()))?;
        let asked = Instant::now();
        let permit = replica.admission.admit(self.limits.request_timeout).await?;
        let shares = Shares {
            app: self.app_share.load_full(),
            pool: self.pool.clone(),
        };
        let slot = Slot::new(permit, shares.take()?);
        let connect = asked.elapsed();
        if counted {
            replica.served.fetch_add(1, Ordering::Relaxed);
        }
        let (req, verdict) = {
            let (parts, body) = req.into_parts();
            let (body, verdict) = Guarded::new(body, max_body, self.limits.body_timeout);
            (hyper::Request::from_parts(parts, body), verdict)
        };
        let served = match &*self.code {
            WebCode::Component(c) => c.serve(req, &replica.env, slot, &verdict).await,
            WebCode::Wagi(w) => w.serve(req, cgi, &replica.env, slot, &verdict).await,
        };
        // Every request has a fresh instance, so one trap cannot poison the
        // next; a replica that keeps trapping is still replaced, visibly,
        // like a crashing dyno.
        if let (Err(err), Some(sink)) = (&served, failure_log::sink(&replica.env)) {
            failure_log::tell(&*sink, &request_id, err, self.limits.request_timeout);
        }
        match &served {
            Err(err @ WebError::Crashed(_)) => {
                let crashes = replica.crashes_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                if crashes == CRASHES_BEFORE_REPLACE {
                    self.replace(&replica, err);
                }
            }
            _ => replica.crashes_in_a_row.store(0, Ordering::Relaxed),
        }
        let mut response = served?;
        response.extensions_mut().insert(ServedBy {
            replica: replica.name.clone(),
            connect,
        });
        Ok(response)
    }
}

/// Request extension: the platform's own request (the deploy's health
/// check), not the app's traffic; a replica does not count it as served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uncounted;

/// The body length a request announces: its `Content-Length`, or what its
/// body knows of itself.
fn declared_length<B: http_body::Body>(req: &hyper::Request<B>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse().ok())
        .or_else(|| req.body().size_hint().exact())
}
