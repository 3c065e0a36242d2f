//! A web process type and its replicas.
//!
//! The compiled, linked code is shared; a replica (`web.1`, `web.2`, …) is a
//! unit of capacity: its own concurrency slots and queue (an [`Admission`]),
//! its own counters, and `DYNO=web.N` in its environment, as on Heroku.
//! Every request still runs in a fresh instance; the router sends it to the
//! replica with the fewest outstanding (running + queued) requests.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

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
    name: String,
    env: ProcessEnv,
    admission: Admission,
    served: AtomicU64,
    since: SystemTime,
}

/// Response extension naming the replica that answered (`web.2`), for the
/// router's access log.
#[derive(Debug, Clone)]
pub struct ServedBy(pub String);

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
}

/// A loaded web process type: shared code, one or more replicas.
pub struct WebProcess {
    code: Arc<WebCode>,
    env: ProcessEnv,
    limits: Limits,
    replicas: Vec<Replica>,
    /// Where the next search for the least busy replica starts, so that
    /// idle replicas take turns instead of `web.1` taking everything.
    next: AtomicUsize,
}

impl WebProcess {
    pub(super) fn new(code: WebCode, env: ProcessEnv, limits: Limits, replicas: usize) -> Self {
        Self::with_code(Arc::new(code), env, limits, replicas)
    }

    fn with_code(code: Arc<WebCode>, env: ProcessEnv, limits: Limits, replicas: usize) -> Self {
        let since = SystemTime::now();
        let replicas = (1..=replicas.max(1))
            .map(|n| {
                let name = format!("web.{n}");
                let mut env = env.clone();
                // DYNO is the platform's to set, as on Heroku.
                env.vars.retain(|(k, _)| k != "DYNO");
                env.vars.push(("DYNO".into(), name.clone()));
                Replica {
                    name,
                    env,
                    admission: Admission::new(limits.max_concurrency, limits.max_queue),
                    served: AtomicU64::new(0),
                    since,
                }
            })
            .collect();
        Self {
            code,
            env,
            limits,
            replicas,
            next: AtomicUsize::new(0),
        }
    }

    /// The same code with `replicas` fresh replicas (`ps:scale`). Requests
    /// running on `self` finish there.
    pub fn scaled(&self, replicas: usize) -> Self {
        Self::with_code(
            self.code.clone(),
            self.env.clone(),
            self.limits.clone(),
            replicas,
        )
    }

    /// `"wasi:http component"` or `"WAGI module"`, for display.
    pub fn kind(&self) -> &'static str {
        match *self.code {
            WebCode::Component(_) => "wasi:http component",
            WebCode::Wagi(_) => "WAGI module",
        }
    }

    /// The limits each replica runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of replicas.
    pub fn replica_count(&self) -> usize {
        self.replicas.len()
    }

    /// Requests running or queued now, over all replicas.
    pub fn in_flight(&self) -> usize {
        self.replicas
            .iter()
            .map(|r| r.admission.outstanding())
            .sum()
    }

    /// Live numbers of each replica.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .iter()
            .map(|r| ReplicaStatus {
                name: r.name.clone(),
                in_flight: r.admission.outstanding(),
                served: r.served.load(Ordering::Relaxed),
                since: r.since,
            })
            .collect()
    }

    /// The replica with the fewest outstanding requests; ties go to the
    /// first one found from a rotating start.
    fn pick(&self) -> &Replica {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = &self.replicas[start];
        let mut best_load = best.admission.outstanding();
        for i in 1..n {
            if best_load == 0 {
                break;
            }
            let candidate = &self.replicas[(start + i) % n];
            let load = candidate.admission.outstanding();
            if load < best_load {
                (best, best_load) = (candidate, load);
            }
        }
        best
    }

    /// Serves one request on the least busy replica: waits for one of its
    /// slots, then runs a fresh instance.
    pub async fn serve<B: RequestBody>(
        &self,
        req: hyper::Request<B>,
        cgi: &CgiContext,
    ) -> Result<hyper::Response<BoxBody>, WebError> {
        let replica = self.pick();
        let permit = replica.admission.admit(self.limits.request_timeout).await?;
        replica.served.fetch_add(1, Ordering::Relaxed);
        let mut response = match &*self.code {
            WebCode::Component(c) => c.serve(req, &replica.env, permit).await,
            WebCode::Wagi(w) => w.serve(req, cgi, &replica.env, permit).await,
        }?;
        response
            .extensions_mut()
            .insert(ServedBy(replica.name.clone()));
        Ok(response)
    }
}
