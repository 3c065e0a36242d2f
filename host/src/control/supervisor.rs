//! Long-running process types (`worker: jobs.wasm --queue q`) and one-off
//! runs: each replica is one running WASI command instance, restarted with
//! exponential backoff when it exits or traps, like a crashed dyno.
//!
//! The supervisor knows nothing of releases or the store: the platform
//! hands it linked commands and replica counts; it keeps them running and
//! reports their state for `ps`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::logs::LogHub;
use crate::runtime::output::{LineSink, Tee};
use crate::runtime::{Exit, ProcessEnv, Stdio, WasiCommand};

/// How long a crashed replica waits before it runs again: `first` after
/// its first crash, doubling with each crash in a row up to `max`. A
/// replica that ran for `healthy_run` before it exited starts afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (`wpaas server --restart-backoff`).
    pub first: Duration,
    /// The longest delay (`wpaas server --max-restart-backoff`).
    pub max: Duration,
    /// A run this long counts as healthy: the next crash waits `first`
    /// again. 120 times `first`, at most a minute (a minute by default), so
    /// that a shortened backoff shortens it too.
    pub healthy_run: Duration,
}

impl Default for Backoff {
    /// 500 ms, doubling up to 5 minutes.
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(300))
    }
}

impl Backoff {
    /// Starts at `first` and doubles up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
            healthy_run: (first * 120).min(Duration::from_secs(60)),
        }
    }
}

/// What `ps` shows of one process.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessStatus {
    /// `worker.1`, `run.3`.
    pub name: String,
    /// `starting`, `up` or `crashed`.
    pub state: &'static str,
    /// Since when it is in that state (RFC 3339).
    pub since: String,
    /// Restarts after exits or traps.
    pub restarts: u32,
    /// How it last ended, if it did.
    pub last_exit: Option<String>,
    /// The command line (one-off runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

struct Shared {
    state: &'static str,
    since: SystemTime,
    restarts: u32,
    last_exit: Option<String>,
}

struct Replica {
    name: String,
    shared: Arc<Mutex<Shared>>,
    stop: watch::Sender<bool>,
}

impl Replica {
    fn status(&self) -> ProcessStatus {
        let shared = self.shared.lock().expect("replica state");
        ProcessStatus {
            name: self.name.clone(),
            state: shared.state,
            since: humantime::format_rfc3339_seconds(shared.since).to_string(),
            restarts: shared.restarts,
            last_exit: shared.last_exit.clone(),
            command: None,
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// One process type's running replicas, all of one release.
struct Group {
    release: u32,
    command: Arc<WasiCommand>,
    env: ProcessEnv,
    replicas: Vec<Replica>,
}

/// A one-off run in progress: what `ps` shows, and how `ps:stop run.N`
/// ends it.
struct Run {
    status: ProcessStatus,
    stop: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct AppProcesses {
    groups: BTreeMap<String, Group>,
    runs: BTreeMap<u32, Run>,
}

/// Keeps every app's long-running processes running.
pub struct Supervisor {
    apps: Mutex<HashMap<String, AppProcesses>>,
    /// Where every replica's and run's lines go, as `worker.1`, `run.2`…
    logs: Arc<LogHub>,
    /// Each app's one-off runs so far: `run.N` counts per app, as on
    /// Heroku, and is not reused while the server runs.
    run_counters: Mutex<HashMap<String, u32>>,
    backoff: Backoff,
}

impl Supervisor {
    /// A supervisor whose processes print to their app's log in `logs`
    /// and wait `backoff` after each crash.
    pub fn new(logs: Arc<LogHub>, backoff: Backoff) -> Self {
        Self {
            apps: Mutex::default(),
            logs,
            run_counters: Mutex::default(),
            backoff,
        }
    }

    /// Runs `count` replicas of `kind` from `release`. Replicas of another
    /// release (or another command) are replaced: the new ones start first,
    /// then the old ones stop. Of the same release, extra ones stop and
    /// missing ones start.
    pub fn set(
        &self,
        app: &str,
        kind: &str,
        release: u32,
        command: Arc<WasiCommand>,
        env: ProcessEnv,
        count: usize,
    ) {
        let mut apps = self.apps.lock().expect("supervisor");
        let processes = apps.entry(app.to_string()).or_default();
        let same = processes
            .groups
            .get(kind)
            .is_some_and(|g| g.release == release && Arc::ptr_eq(&g.command, &command));
        if !same {
            let mut group = Group {
                release,
                command,
                env,
                replicas: Vec::new(),
            };
            self.grow(app, kind, &mut group, count);
            // Dropping the old group stops its replicas, after the new ones
            // are running.
            processes.groups.insert(kind.to_string(), group);
            return;
        }
        let group = processes.groups.get_mut(kind).expect("checked");
        group.replicas.truncate(count);
        self.grow(app, kind, group, count);
    }

    /// The running command of `kind`, if it runs (to rescale without
    /// loading it again).
    pub fn command(&self, app: &str, kind: &str, release: u32) -> Option<Arc<WasiCommand>> {
        let apps = self.apps.lock().expect("supervisor");
        let group = apps.get(app)?.groups.get(kind)?;
        (group.release == release).then(|| group.command.clone())
    }

    /// Stops every replica of `kind`.
    pub fn stop(&self, app: &str, kind: &str) {
        if let Some(processes) = self.apps.lock().expect("supervisor").get_mut(app) {
            processes.groups.remove(kind);
        }
    }

    /// Stops every replica of every type not in `keep`.
    pub fn retain(&self, app: &str, keep: &[&str]) {
        if let Some(processes) = self.apps.lock().expect("supervisor").get_mut(app) {
            processes
                .groups
                .retain(|kind, _| keep.contains(&kind.as_str()));
        }
    }

    /// Stops all of an app's processes.
    pub fn stop_app(&self, app: &str) {
        self.apps.lock().expect("supervisor").remove(app);
    }

    /// The replicas of `kind` (empty when it does not run).
    pub fn status(&self, app: &str, kind: &str) -> Vec<ProcessStatus> {
        let apps = self.apps.lock().expect("supervisor");
        apps.get(app)
            .and_then(|p| p.groups.get(kind))
            .map(|g| g.replicas.iter().map(Replica::status).collect())
            .unwrap_or_default()
    }

    /// One-off runs in progress.
    pub fn runs(&self, app: &str) -> Vec<ProcessStatus> {
        let apps = self.apps.lock().expect("supervisor");
        apps.get(app)
            .map(|p| p.runs.values().map(|run| run.status.clone()).collect())
            .unwrap_or_default()
    }

    /// Replaces the replica `name` (`worker.2`) of `kind` with a fresh
    /// one; the others keep running. False when no such replica runs.
    pub fn restart_replica(&self, app: &str, kind: &str, name: &str) -> bool {
        let mut apps = self.apps.lock().expect("supervisor");
        let Some(group) = apps.get_mut(app).and_then(|p| p.groups.get_mut(kind)) else {
            return false;
        };
        let Some(index) = group.replicas.iter().position(|r| r.name == name) else {
            return false;
        };
        let fresh = self.start(app, name, group);
        // Dropping the old replica stops it.
        group.replicas[index] = fresh;
        true
    }

    /// Stops the one-off run `run.N` (its client sees it end as
    /// stopped). False when it is not running.
    pub fn stop_run(&self, app: &str, n: u32) -> bool {
        let apps = self.apps.lock().expect("supervisor");
        match apps.get(app).and_then(|p| p.runs.get(&n)) {
            Some(run) => {
                // Kept until the run waits for it, if it is not waiting yet.
                run.stop.notify_one();
                true
            }
            None => false,
        }
    }

    /// Runs `command` once as `run.N`, listed in `ps` while it runs; its
    /// output goes to `stdio` and to the app's log. Stops when `stop`
    /// resolves (the client went away).
    pub async fn run_once(
        &self,
        app: &str,
        command: &WasiCommand,
        env: &ProcessEnv,
        stdio: Stdio,
        stop: impl std::future::Future<Output = ()>,
    ) -> (String, Exit) {
        let n = {
            let mut counters = self.run_counters.lock().expect("run counters");
            let n = counters.entry(app.to_string()).or_default();
            *n += 1;
            *n
        };
        let name = format!("run.{n}");
        // The guest sees its name, as every replica does.
        let env = &env.clone().for_process(&name);
        let status = ProcessStatus {
            name: name.clone(),
            state: "up",
            since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            restarts: 0,
            last_exit: None,
            command: Some(env.args.join(" ")),
        };
        let stopped_here = Arc::new(tokio::sync::Notify::new());
        self.apps
            .lock()
            .expect("supervisor")
            .entry(app.to_string())
            .or_default()
            .runs
            .insert(
                n,
                Run {
                    status,
                    stop: stopped_here.clone(),
                },
            );
        let log: Arc<dyn LineSink> = Arc::new(self.logs.app_log(app, &name));
        let stdio = Stdio {
            stdout: Arc::new(Tee(stdio.stdout, log.clone())),
            stderr: Arc::new(Tee(stdio.stderr, log)),
        };
        // The client going away or `ps:stop run.N`, whichever comes first.
        let stop = async {
            tokio::select! {
                () = stop => {}
                () = stopped_here.notified() => {}
            }
        };
        let exit = command.run(env, &stdio, None, stop).await;
        if let Some(processes) = self.apps.lock().expect("supervisor").get_mut(app) {
            processes.runs.remove(&n);
        }
        (name, exit)
    }

    fn grow(&self, app: &str, kind: &str, group: &mut Group, count: usize) {
        while group.replicas.len() < count {
            let name = format!("{kind}.{}", group.replicas.len() + 1);
            group.replicas.push(self.start(app, &name, group));
        }
    }

    fn start(&self, app: &str, name: &str, group: &Group) -> Replica {
        let shared = Arc::new(Mutex::new(Shared {
            state: "starting",
            since: SystemTime::now(),
            restarts: 0,
            last_exit: None,
        }));
        let (stop, stopped) = watch::channel(false);
        let env = group.env.clone().for_process(name);
        let out: Arc<dyn LineSink> = Arc::new(self.logs.app_log(app, name));
        let stdio = Stdio {
            stdout: out.clone(),
            stderr: out.clone(),
        };
        tokio::spawn(keep_running(
            group.command.clone(),
            env,
            stdio,
            shared.clone(),
            stopped,
            self.backoff,
        ));
        Replica {
            name: name.to_string(),
            shared,
            stop,
        }
    }
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The life of one replica: run, and after each exit wait (doubling the
/// delay while it keeps crashing) and run again, until told to stop.
async fn keep_running(
    command: Arc<WasiCommand>,
    env: ProcessEnv,
    stdio: Stdio,
    shared: Arc<Mutex<Shared>>,
    stop: watch::Receiver<bool>,
    policy: Backoff,
) {
    // `ps` shows the state it is in now: `crashed` only while it waits to
    // run again, and a restart counted once it has happened.
    let set = |state: &'static str, change: &dyn Fn(&mut Shared)| {
        let mut shared = shared.lock().expect("replica state");
        shared.state = state;
        shared.since = SystemTime::now();
        change(&mut shared);
    };
    let mut backoff = policy.first;
    loop {
        set("up", &|_| {});
        let started = Instant::now();
        let exit = command.run(&env, &stdio, None, stopped(stop.clone())).await;
        if exit == Exit::Stopped || *stop.borrow() {
            return;
        }
        stdio.stderr.line(&format!("Process {exit}"));
        if started.elapsed() >= policy.healthy_run {
            backoff = policy.first;
        }
        set("crashed", &|shared| {
            shared.last_exit = Some(exit.to_string())
        });
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(stop.clone()) => return,
        }
        backoff = (backoff * 2).min(policy.max);
        set("starting", &|shared| shared.restarts += 1);
    }
}
