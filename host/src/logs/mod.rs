//! One log stream per app: every line `TIMESTAMP app[PROCESS]: MESSAGE`,
//! from the app's processes (`web.1`, `worker.2`, `run.1`), the router
//! (`router`), builds (`build`), the API (`api`) and the scaler (`scaler`).
//!
//! Writers hold an [`AppLog`] (one app, one process; cheap to clone) or
//! call [`LogHub::push`] for a single line.
//!
//! Lifecycle: [`LogHub::open`] once per server (reads back what the last
//! run kept and starts the disk writer); [`LogHub::push`] once per line —
//! into the app's bounded ring (the last N lines), to live subscribers
//! (`logs --tail`), and onto a bounded queue for the [`disk`] writer.
//! Pushing never waits for disk or for a reader: a full queue drops the
//! line from the file (counted, and reported as a line once the writer
//! catches up), a slow subscriber is told how many lines it missed.

mod app_log;
mod disk;
mod terminal;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

pub use app_log::AppLog;
pub use terminal::TerminalAccessLog;

/// Lines kept per app unless configured otherwise.
pub const DEFAULT_LINES: usize = 10_000;

/// Lines queued for the disk writer (all apps) before lines are dropped
/// from the files.
const DISK_QUEUE: usize = 16 * 1024;

/// Lines a live subscriber may fall behind before it misses some.
const LIVE_BUFFER: usize = 4096;

/// Process names that are the platform's, not the app's own output.
pub const PLATFORM_PROCESSES: &[&str] = &["router", "build", "api", "scaler", "logs"];

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// RFC 3339 with microseconds, UTC.
    pub time: String,
    /// `web.1`, `router`, `build`, `api`…
    pub process: String,
    /// The text, without a newline.
    pub message: String,
}

impl LogLine {
    /// A line stamped now.
    pub fn now(process: &str, message: &str) -> Self {
        Self {
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            process: process.to_string(),
            message: message.to_string(),
        }
    }

    /// `app` for the app's own processes, else the process name
    /// (`router`, `build`, `api`…): what `--source` selects.
    pub fn source(&self) -> &str {
        if PLATFORM_PROCESSES.contains(&self.process.as_str()) {
            &self.process
        } else {
            "app"
        }
    }

    /// Reads back a line written by `Display`.
    pub fn parse(text: &str) -> Option<Self> {
        let (time, rest) = text.split_once(' ')?;
        let rest = rest.strip_prefix("app[")?;
        let (process, message) = rest.split_once("]: ")?;
        Some(Self {
            time: time.to_string(),
            process: process.to_string(),
            message: message.to_string(),
        })
    }

    /// `{"time", "source", "process", "message"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "time": self.time,
            "source": self.source(),
            "process": self.process,
            "message": self.message,
        })
    }
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} app[{}]: {}", self.time, self.process, self.message)
    }
}

/// Which lines a reader wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `web` (all replicas of the type) or `web.1` (one).
    pub process: Option<String>,
    /// `app`, `router`, `build`, `api`, `scaler`.
    pub source: Option<String>,
}

impl Filter {
    /// Whether `line` passes.
    pub fn matches(&self, line: &LogLine) -> bool {
        let process_ok = self.process.as_deref().is_none_or(|want| {
            line.process == want
                || line
                    .process
                    .split_once('.')
                    .is_some_and(|(kind, _)| kind == want)
        });
        process_ok && self.source.as_deref().is_none_or(|s| line.source() == s)
    }
}

/// What a live subscriber receives.
pub type Live = broadcast::Receiver<Arc<LogLine>>;

/// One app's kept lines and live subscribers.
struct AppStream {
    ring: Mutex<VecDeque<Arc<LogLine>>>,
    live: broadcast::Sender<Arc<LogLine>>,
    /// Lines that never reached the file since the last report.
    unwritten: AtomicU64,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct LogStats {
    /// Lines pushed.
    pub lines: u64,
    /// Lines not written to disk (the writer fell behind).
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    lines: AtomicU64,
    dropped: AtomicU64,
}

/// Every app's log.
pub struct LogHub {
    capacity: usize,
    apps: ArcSwap<HashMap<String, Arc<AppStream>>>,
    counters: ArcSwap<HashMap<String, Arc<Counters>>>,
    disk: Option<std::sync::mpsc::SyncSender<disk::Op>>,
}

impl LogHub {
    /// A hub keeping `capacity` lines per app in `dir` (one `APP.log`
    /// each, created if missing), with what a previous run left there.
    pub fn open(dir: &Path, capacity: usize) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        std::fs::create_dir_all(dir)?;
        let (kept, counts) = disk::read_back(dir, capacity)?;
        let hub = Self::in_memory(capacity);
        for (app, lines) in kept {
            let log = hub.app(&app);
            let mut ring = log.ring.lock().expect("log ring");
            ring.extend(lines.into_iter().map(Arc::new));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(DISK_QUEUE);
        disk::spawn_writer(PathBuf::from(dir), capacity, counts, rx)?;
        Ok(Self {
            disk: Some(tx),
            ..hub
        })
    }

    /// A hub that keeps nothing on disk.
    pub fn in_memory(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            apps: ArcSwap::default(),
            counters: ArcSwap::default(),
            disk: None,
        }
    }

    /// Lines kept per app.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn app(&self, app: &str) -> Arc<AppStream> {
        if let Some(log) = self.apps.load().get(app) {
            return log.clone();
        }
        let mut created = None;
        self.apps.rcu(|apps| {
            let mut apps = HashMap::clone(apps);
            let log = apps
                .entry(app.to_string())
                .or_insert_with(|| {
                    Arc::new(AppStream {
                        ring: Mutex::new(VecDeque::new()),
                        live: broadcast::channel(LIVE_BUFFER).0,
                        unwritten: AtomicU64::new(0),
                    })
                })
                .clone();
            created = Some(log);
            apps
        });
        created.expect("rcu ran")
    }

    fn counters(&self, app: &str) -> Arc<Counters> {
        if let Some(c) = self.counters.load().get(app) {
            return c.clone();
        }
        let mut found = None;
        self.counters.rcu(|all| {
            let mut all = HashMap::clone(all);
            found = Some(all.entry(app.to_string()).or_default().clone());
            all
        });
        found.expect("rcu ran")
    }

    /// Adds a line from `process` to `app`'s log.
    pub fn push(&self, app: &str, process: &str, message: &str) {
        self.push_line(app, LogLine::now(process, message));
    }

    fn push_line(&self, app: &str, line: LogLine) {
        let log = self.app(app);
        let counters = self.counters(app);
        counters.lines.fetch_add(1, Ordering::Relaxed);
        let line = Arc::new(line);
        // The ring, the subscribers and the disk queue see lines in the
        // same order: all three happen under the ring's lock.
        let mut ring = log.ring.lock().expect("log ring");
        let unwritten = log.unwritten.load(Ordering::Relaxed);
        if unwritten > 0 {
            let report = line_report(unwritten);
            if self.to_disk(app, &report) {
                log.unwritten.fetch_sub(unwritten, Ordering::Relaxed);
                Self::keep(&mut ring, self.capacity, &log.live, Arc::new(report));
            }
        }
        if !self.to_disk(app, &line) {
            log.unwritten.fetch_add(1, Ordering::Relaxed);
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Self::keep(&mut ring, self.capacity, &log.live, line);
    }

    fn keep(
        ring: &mut VecDeque<Arc<LogLine>>,
        capacity: usize,
        live: &broadcast::Sender<Arc<LogLine>>,
        line: Arc<LogLine>,
    ) {
        while ring.len() >= capacity {
            ring.pop_front();
        }
        ring.push_back(line.clone());
        // No subscribers is not an error.
        let _ = live.send(line);
    }

    /// Queues `line` for the file; false when the queue is full.
    fn to_disk(&self, app: &str, line: &LogLine) -> bool {
        match &self.disk {
            None => true,
            Some(tx) => tx
                .try_send(disk::Op::Append(app.to_string(), line.to_string()))
                .is_ok(),
        }
    }

    /// The last `n` lines of `app` passing `filter`, oldest first, and —
    /// with `follow` — a subscription to every line after them (no gap, no
    /// repeat).
    pub fn read(
        &self,
        app: &str,
        n: usize,
        filter: &Filter,
        follow: bool,
    ) -> (Vec<Arc<LogLine>>, Option<Live>) {
        let log = self.app(app);
        let ring = log.ring.lock().expect("log ring");
        let mut lines: Vec<Arc<LogLine>> = ring
            .iter()
            .rev()
            .filter(|l| filter.matches(l))
            .take(n)
            .cloned()
            .collect();
        lines.reverse();
        let live = follow.then(|| log.live.subscribe());
        (lines, live)
    }

    /// Forgets an app's log, file included (the app was destroyed).
    pub fn remove(&self, app: &str) {
        self.apps.rcu(|apps| {
            let mut apps = HashMap::clone(apps);
            apps.remove(app);
            apps
        });
        if let Some(tx) = &self.disk {
            // Blocking is fine here: destroying an app is rare.
            let _ = tx.send(disk::Op::Remove(app.to_string()));
        }
    }

    /// Moves an app's log, file included, to its new name (the app was
    /// renamed; its processes are stopped, so none writes under `old`).
    pub fn rename(&self, old: &str, new: &str) {
        self.apps.rcu(|apps| {
            let mut apps = HashMap::clone(apps);
            if let Some(log) = apps.remove(old) {
                apps.insert(new.to_string(), log);
            }
            apps
        });
        self.counters.rcu(|all| {
            let mut all = HashMap::clone(all);
            if let Some(counters) = all.remove(old) {
                all.insert(new.to_string(), counters);
            }
            all
        });
        if let Some(tx) = &self.disk {
            // Blocking is fine here: renaming an app is rare.
            let _ = tx.send(disk::Op::Rename(old.to_string(), new.to_string()));
        }
    }

    /// Lines pushed and dropped per app.
    pub fn stats(&self) -> Vec<(String, LogStats)> {
        let mut all: Vec<(String, LogStats)> = self
            .counters
            .load()
            .iter()
            .map(|(app, c)| {
                let stats = LogStats {
                    lines: c.lines.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                };
                (app.clone(), stats)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// `app`'s log as `process` writes it: the handle to give whatever
    /// produces its lines.
    pub fn app_log(self: &Arc<Self>, app: &str, process: &str) -> AppLog {
        AppLog::new(self.clone(), app, process)
    }
}

/// The router's access log: one `app[router]` line per request.
impl crate::router::Observer for LogHub {
    fn observe(&self, access: &crate::router::Access) {
        self.push(&access.app, "router", &access.logfmt());
    }
}

fn line_report(unwritten: u64) -> LogLine {
    LogLine::now(
        "logs",
        &format!("{unwritten} lines dropped from the log file (the disk writer fell behind)"),
    )
}

/// The line a subscriber gets in place of lines it was too slow to read.
pub fn lag_line(missed: u64) -> LogLine {
    LogLine::now(
        "logs",
        &format!("{missed} lines dropped (this reader fell behind)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_through_text() {
        let line = LogLine::now("web.1", "hello [x]: y");
        assert_eq!(LogLine::parse(&line.to_string()), Some(line.clone()));
        assert_eq!(line.source(), "app");
        assert_eq!(LogLine::now("router", "at=info").source(), "router");
    }

    #[test]
    fn filters_by_type_replica_and_source() {
        let web2 = LogLine::now("web.2", "x");
        let by = |process: Option<&str>, source: Option<&str>| Filter {
            process: process.map(Into::into),
            source: source.map(Into::into),
        };
        assert!(by(Some("web"), None).matches(&web2));
        assert!(by(Some("web.2"), Some("app")).matches(&web2));
        assert!(!by(Some("web.1"), None).matches(&web2));
        assert!(!by(None, Some("router")).matches(&web2));
    }

    #[test]
    fn keeps_the_last_n_and_follows_without_gaps() {
        let hub = LogHub::in_memory(3);
        for i in 0..5 {
            hub.push("a", "web.1", &format!("line {i}"));
        }
        let (lines, live) = hub.read("a", 10, &Filter::default(), true);
        let text: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(text, ["line 2", "line 3", "line 4"]);
        let mut live = live.unwrap();
        hub.push("a", "router", "next");
        assert_eq!(live.try_recv().unwrap().message, "next");
        assert!(hub.read("b", 10, &Filter::default(), false).0.is_empty());
    }

    #[test]
    fn survives_a_restart_and_compacts_its_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let hub = LogHub::open(dir.path(), 10).unwrap();
            for i in 0..35 {
                hub.push("a", "web.1", &format!("line {i}"));
            }
        }
        // The writer thread finishes once the hub (its sender) is gone.
        let file = dir.path().join("a.log");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !std::fs::read_to_string(&file)
            .unwrap_or_default()
            .contains("line 34")
        {
            assert!(std::time::Instant::now() < deadline, "not written");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let on_disk = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(on_disk <= 20, "{on_disk} lines on disk");
        let hub = LogHub::open(dir.path(), 10).unwrap();
        let (lines, _) = hub.read("a", 100, &Filter::default(), false);
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[9].message, "line 34");
    }
}
