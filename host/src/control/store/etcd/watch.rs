//! One etcd watch on the store's keys, turned into [`Change`]s for
//! [`crate::control::store::Store::watch`], whoever made them.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use tokio::sync::broadcast;

use super::txn::decode;
use crate::control::store::{off_worker, Build, Change, StoreError};
use crate::etcd::Etcd;

/// How long a write waits for the watch to announce it; past that it
/// returns anyway (the write is committed; the announcement comes late).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

/// The highest revision the watch has announced.
#[derive(Debug, Default)]
pub(super) struct Progress {
    seen: Mutex<i64>,
    moved: Condvar,
}

impl Progress {
    fn advance(&self, revision: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if revision > *seen {
            *seen = revision;
            self.moved.notify_all();
        }
    }

    /// Blocks until revision `revision` has been announced (or the timeout).
    pub fn wait_for(&self, revision: i64) {
        off_worker(|| {
            let deadline = Instant::now() + ANNOUNCE_TIMEOUT;
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            while *seen < revision {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    tracing::warn!("the store's etcd watch has not reached revision {revision}");
                    return;
                }
                seen = self
                    .moved
                    .wait_timeout(seen, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        });
    }
}

/// Starts watching `root` from the current revision on.
pub(super) fn start(
    etcd: &Etcd,
    root: Vec<u8>,
    changes: broadcast::Sender<Change>,
) -> Result<(Arc<Progress>, tokio::task::JoinHandle<()>), StoreError> {
    // The revision now: the watch starts right after it.
    let r = root.clone();
    let now = etcd
        .block_on(|mut c| async move { c.get(r, Some(GetOptions::new().with_count_only())).await })?
        .header()
        .map_or(0, |h| h.revision());
    let progress = Arc::new(Progress::default());
    progress.advance(now);
    let task = etcd
        .runtime()
        .spawn(run(etcd.client(), root, now + 1, changes, progress.clone()));
    Ok((progress, task))
}

/// Watches from `start` on, re-establishing the watch where it stopped when
/// the connection breaks.
async fn run(
    mut client: Client,
    root: Vec<u8>,
    mut start: i64,
    changes: broadcast::Sender<Change>,
    progress: Arc<Progress>,
) {
    loop {
        let options = WatchOptions::new().with_prefix().with_start_revision(start);
        let mut stream = match client.watch(root.clone(), Some(options)).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!("store watch: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Ok(Some(resp)) = stream.message().await {
            if resp.compact_revision() > 0 {
                // What happened before it is gone from etcd's history.
                tracing::warn!(
                    "the store's watch missed changes up to revision {}; watchers re-read on the next change",
                    resp.compact_revision()
                );
                start = resp.compact_revision();
                break;
            }
            let mut last = 0;
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                last = last.max(kv.mod_revision());
                let put = event.event_type() == EventType::Put;
                if let Some(change) = translate(&kv.key()[root.len()..], put, kv.value()) {
                    // No watcher is fine.
                    let _ = changes.send(change);
                }
            }
            if last > 0 {
                start = last + 1;
                progress.advance(last);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The change a write of `key` (below the root) announces, if any: records
/// are announced, indexes, counters and leases are not.
fn translate(key: &[u8], put: bool, value: &[u8]) -> Option<Change> {
    let key = std::str::from_utf8(key).ok()?;
    let (kind, rest) = key.split_once('/')?;
    match (kind, put) {
        ("apps", true) => Some(Change::App(rest.to_string())),
        ("apps", false) => Some(Change::AppDestroyed(rest.to_string())),
        ("releases", true) => {
            let (app, version) = rest.split_once('/')?;
            Some(Change::Release {
                app: app.to_string(),
                version: version.parse().ok()?,
            })
        }
        ("builds", true) => {
            let build: Build = decode("build", value).ok()?;
            Some(Change::Build {
                app: build.app,
                id: build.id,
            })
        }
        _ => None,
    }
}
