//! Where the lines of a long operation go: to the client watching it (a
//! deploy's response stream), to the app's log (`app[build]`) and, once it
//! has a record, to its log file (`builds/<id>.log`, shown later by
//! `builds:output`). A one-off run's output goes to its client through the
//! same bounded stream ([`ClientLines::run_stdio`]).
//!
//! Everything is bounded. The client gets a channel of [`CLIENT_LINES`]
//! lines: when it reads more slowly than the build writes, lines are
//! dropped and counted, and one `N lines dropped` line takes their place as
//! soon as there is room — the build never waits for the client, and
//! nothing piles up in memory. The log file keeps the first
//! [`MAX_LOG_FILE`] bytes, then one line saying the rest was cut.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, error::TrySendError, Receiver, Sender};

use crate::logs::AppLog;
use crate::runtime::output::LineSink;
use crate::runtime::Stdio;

/// Lines buffered for a client (a deploy or `run` stream) before further
/// lines are dropped.
pub const CLIENT_LINES: usize = 1024;

/// The most bytes of one build's log file.
pub const MAX_LOG_FILE: u64 = 32 << 20;

/// A bounded stream of lines to one client that drops (and counts) lines
/// rather than wait for it.
pub struct ClientLines {
    tx: Sender<String>,
    /// Lines dropped since the last one that got through.
    dropped: Mutex<u64>,
}

impl ClientLines {
    /// A stream whose lines come out of the returned receiver.
    pub fn channel() -> (Arc<Self>, Receiver<String>) {
        let (tx, rx) = mpsc::channel(CLIENT_LINES);
        let lines = Self {
            tx,
            dropped: Mutex::new(0),
        };
        (Arc::new(lines), rx)
    }

    /// Sends `line` if there is room, else counts it as dropped. Never
    /// waits.
    pub fn offer(&self, line: String) {
        let mut dropped = self.dropped.lock().expect("dropped lines");
        if *dropped > 0 {
            match self.tx.try_send(dropped_line(*dropped)) {
                Ok(()) => *dropped = 0,
                Err(TrySendError::Full(_)) => {
                    *dropped += 1;
                    return;
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            *dropped += 1;
        }
    }

    /// Sends `line` (after the count of lines dropped before it), waiting
    /// for room: for the last lines of a stream, which must arrive. Waits
    /// in the caller's task, never on a thread.
    pub async fn send_wait(&self, line: String) {
        let dropped = std::mem::take(&mut *self.dropped.lock().expect("dropped lines"));
        if dropped > 0 {
            let _ = self.tx.send(dropped_line(dropped)).await;
        }
        let _ = self.tx.send(line).await;
    }

    /// Resolves when the client went away.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// A one-off run's stdout and stderr for this client (each line sent as
    /// `1 TEXT` or `2 TEXT`), and a receiver that ends (yields `None`) once
    /// both are dropped. The guest's output streams drop them as they end,
    /// after handing over a last unterminated line: when the receiver ends,
    /// every line of output is out.
    pub fn run_stdio(self: &Arc<Self>) -> (Stdio, Receiver<()>) {
        let (in_use, all_out) = mpsc::channel(1);
        let stream = |fd| -> Arc<dyn LineSink> {
            Arc::new(RunLines {
                client: self.clone(),
                fd,
                _in_use: in_use.clone(),
            })
        };
        let stdio = Stdio {
            stdout: stream(1),
            stderr: stream(2),
        };
        (stdio, all_out)
    }
}

/// One output stream of a one-off run, as its client reads it.
struct RunLines {
    client: Arc<ClientLines>,
    /// `1` for stdout, `2` for stderr: each line's first word.
    fd: u8,
    /// Held until this stream is dropped; see [`ClientLines::run_stdio`].
    _in_use: Sender<()>,
}

impl LineSink for RunLines {
    fn line(&self, line: &str) {
        self.client.offer(format!("{} {line}", self.fd));
    }
}

/// What the client reads in place of lines it was too slow for.
pub fn dropped_line(n: u64) -> String {
    format!(" !     {n} lines dropped: this client read the output more slowly than it came")
}

/// A cloneable line sink. Sending never blocks on the client and never
/// fails: a client that went away does not stop a build.
#[derive(Clone)]
pub struct LogSink {
    client: Option<Arc<ClientLines>>,
    /// Shared by all clones, so lines sent after [`LogSink::record_to`]
    /// through any clone reach the file, in order.
    file: Arc<Mutex<Option<LogFile>>>,
    /// The app's log (`app[build]`), if the lines belong there.
    app_log: Option<AppLog>,
}

struct LogFile {
    file: File,
    written: u64,
}

impl LogSink {
    /// A sink whose lines come out of the returned receiver.
    pub fn channel() -> (Self, Receiver<String>) {
        let (client, rx) = ClientLines::channel();
        let sink = Self {
            client: Some(client),
            file: Arc::default(),
            app_log: None,
        };
        (sink, rx)
    }

    /// A sink nobody reads (operations whose only result is their return value).
    pub fn discard() -> Self {
        Self {
            client: None,
            file: Arc::default(),
            app_log: None,
        }
    }

    /// Also sends every line but the result to `app_log` (the app's log).
    pub fn with_app_log(mut self, app_log: AppLog) -> Self {
        self.app_log = Some(app_log);
        self
    }

    /// Sends one line (to the client only if it keeps up).
    pub fn send(&self, line: impl Into<String>) {
        let line = line.into();
        self.record(&line);
        if let Some(client) = &self.client {
            client.offer(line);
        }
    }

    /// Sends one line that the client must get (the outcome), waiting for
    /// room in its stream.
    pub async fn send_wait(&self, line: impl Into<String>) {
        let line = line.into();
        self.record(&line);
        if let Some(client) = &self.client {
            client.send_wait(line).await;
        }
    }

    /// Sends the stream's last line, the operation's result
    /// (`##wpaas-result {…}`), waiting for room: to the client and the
    /// file, not to the app's log, where it is framing nobody wrote.
    pub async fn send_result(&self, line: String) {
        self.to_file(&line);
        if let Some(client) = &self.client {
            client.send_wait(line).await;
        }
    }

    fn record(&self, line: &str) {
        if let Some(app_log) = &self.app_log {
            app_log.line(line);
        }
        self.to_file(line);
    }

    fn to_file(&self, line: &str) {
        if let Some(log) = self.file.lock().expect("log file").as_mut() {
            let len = line.len() as u64 + 1;
            if log.written < MAX_LOG_FILE {
                // A full disk must not fail the build it is logging.
                let _ = if log.written + len <= MAX_LOG_FILE {
                    writeln!(log.file, "{line}")
                } else {
                    writeln!(
                        log.file,
                        " !     the rest of this output was cut: a build log keeps {} MiB",
                        MAX_LOG_FILE >> 20
                    )
                };
            }
            log.written += len;
        }
    }

    /// From now on, also appends every line to `path` (created, parents too).
    pub fn record_to(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::options().create(true).append(true).open(path)?;
        let written = file.metadata().map_or(0, |m| m.len());
        *self.file.lock().expect("log file") = Some(LogFile { file, written });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_client_and_after_record_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("builds/b1.log");
        let (sink, mut rx) = LogSink::channel();
        sink.send("before");
        let clone = sink.clone();
        sink.record_to(&path).unwrap();
        clone.send("after");
        drop(rx.try_recv());
        assert_eq!(rx.try_recv().unwrap(), "after");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        drop(rx);
        // A client that went away does not stop the file.
        sink.send("still");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\nstill\n");
    }

    #[test]
    fn lines_reach_the_app_log_as_build_but_the_result_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b1.log");
        let hub = Arc::new(crate::logs::LogHub::in_memory(10));
        let (sink, mut rx) = LogSink::channel();
        let sink = sink.with_app_log(hub.app_log("a", "build"));
        sink.record_to(&path).unwrap();
        sink.send("-----> Building");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(sink.send_result("##wpaas-result {}".into()));
        let (kept, _) = hub.read("a", 10, &crate::logs::Filter::default(), false);
        let kept: Vec<String> = kept
            .iter()
            .map(|l| format!("{}: {}", l.process, l.message))
            .collect();
        assert_eq!(kept, ["build: -----> Building"]);
        // The client and the file get both.
        assert_eq!(rx.try_recv().unwrap(), "-----> Building");
        assert_eq!(rx.try_recv().unwrap(), "##wpaas-result {}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "-----> Building\n##wpaas-result {}\n"
        );
    }

    #[test]
    fn a_run_client_reads_framed_lines_and_learns_when_output_ends() {
        let (client, mut rx) = ClientLines::channel();
        let (stdio, mut all_out) = client.run_stdio();
        stdio.stdout.line("out");
        stdio.stderr.line("err");
        assert_eq!(rx.try_recv().unwrap(), "1 out");
        assert_eq!(rx.try_recv().unwrap(), "2 err");
        let stderr = stdio.stderr.clone();
        drop(stdio);
        // One stream is still held: output may still come.
        assert!(matches!(
            all_out.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty)
        ));
        drop(stderr);
        assert!(matches!(
            all_out.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn a_slow_client_loses_lines_and_is_told_how_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b1.log");
        let (sink, mut rx) = LogSink::channel();
        sink.record_to(&path).unwrap();
        let total = CLIENT_LINES + 500;
        for n in 0..total {
            sink.send(format!("line {n}"));
        }
        // The client reads one line: room for the count, which comes
        // before the next line that gets through.
        assert_eq!(rx.try_recv().unwrap(), "line 0");
        sink.send("next");
        let mut got = Vec::new();
        while let Ok(line) = rx.try_recv() {
            got.push(line);
        }
        assert_eq!(got.len(), CLIENT_LINES);
        assert_eq!(got[CLIENT_LINES - 2], format!("line {}", CLIENT_LINES - 1));
        assert_eq!(got[CLIENT_LINES - 1], dropped_line(500));
        // "next" itself found no room after the count: one more dropped,
        // told before the outcome, which waits for room.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(sink.send_wait("done"));
        assert_eq!(rx.try_recv().unwrap(), dropped_line(1));
        assert_eq!(rx.try_recv().unwrap(), "done");
        // The file has every line.
        let file = std::fs::read_to_string(&path).unwrap();
        assert_eq!(file.lines().count(), total + 2);
    }
}
