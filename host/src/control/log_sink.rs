//! Where the lines of a long operation go: to the client watching it (a
//! deploy's response stream) and, once it has a record, to its log file
//! (`builds/<id>.log`, shown later by `builds:output`).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::runtime::output::LineSink;

/// A cloneable line sink. Sending never blocks on the client and never
/// fails: a client that went away does not stop a build.
#[derive(Clone)]
pub struct LogSink {
    client: Option<UnboundedSender<String>>,
    /// Shared by all clones, so lines sent after [`LogSink::record_to`]
    /// through any clone reach the file, in order.
    file: Arc<Mutex<Option<File>>>,
    /// The app's log stream (`app[build]`), if the lines belong there.
    app_log: Option<LineSink>,
}

impl LogSink {
    /// A sink whose lines come out of the returned receiver.
    pub fn channel() -> (Self, UnboundedReceiver<String>) {
        let (tx, rx) = unbounded_channel();
        let sink = Self {
            client: Some(tx),
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

    /// Also sends every line to `app_log` (the app's log stream).
    pub fn with_app_log(mut self, app_log: LineSink) -> Self {
        self.app_log = Some(app_log);
        self
    }

    /// Sends one line.
    pub fn send(&self, line: impl Into<String>) {
        let line = line.into();
        if let Some(app_log) = &self.app_log {
            app_log(&line);
        }
        if let Some(file) = self.file.lock().expect("log file").as_mut() {
            // A full disk must not fail the build it is logging.
            let _ = writeln!(file, "{line}");
        }
        if let Some(client) = &self.client {
            let _ = client.send(line);
        }
    }

    /// From now on, also appends every line to `path` (created, parents too).
    pub fn record_to(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::options().create(true).append(true).open(path)?;
        *self.file.lock().expect("log file") = Some(file);
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
}
