//! `wpaas up`'s access log: the router's lines on stderr.
//!
//! A terminal can be slow (or a pipe nobody reads), and a request must
//! never wait for it, so lines go through a bounded queue to a thread of
//! their own; when the queue is full a line is dropped and counted, and the
//! count is reported as a line once there is room again.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};

use super::LogLine;
use crate::router::{Access, Observer};

/// Lines waiting for the terminal before lines are dropped.
const QUEUE: usize = 4096;

/// Prints `TIMESTAMP app[router]: at=info method=GET …` per request.
pub struct TerminalAccessLog {
    lines: SyncSender<String>,
    dropped: AtomicU64,
}

impl TerminalAccessLog {
    /// Starts the printing thread.
    pub fn start() -> std::io::Result<Self> {
        let (lines, queue) = sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let stderr = std::io::stderr();
                for line in queue {
                    let _ = writeln!(stderr.lock(), "{line}");
                }
            })?;
        Ok(Self {
            lines,
            dropped: AtomicU64::new(0),
        })
    }

    fn send(&self, line: &LogLine) -> bool {
        self.lines.try_send(line.to_string()).is_ok()
    }
}

impl Observer for TerminalAccessLog {
    fn observe(&self, access: &Access) {
        if !self.send(&LogLine::now("router", &access.logfmt())) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let report = format!("{dropped} access log lines dropped (the terminal fell behind)");
            if !self.send(&LogLine::now("router", &report)) {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }
}
