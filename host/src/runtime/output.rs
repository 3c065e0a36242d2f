//! Guest stdout/stderr as lines: what a long-running or one-off process
//! prints is cut into lines and handed to a [`LineSink`] (the app's log, a
//! `run` client, a deploy's output). Writing never blocks the guest on a
//! slow reader: sinks must not block (they queue or drop).
//!
//! The runtime only knows these two traits; the app's log
//! (`crate::logs::AppLog`) and the control plane's client streams
//! implement them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::AsyncStdoutStream;

/// Where a process's lines go, one complete line (without its newline) at
/// a time. Must not block: implementations queue or drop.
pub trait LineSink: Send + Sync {
    /// Takes one line.
    fn line(&self, line: &str);
}

/// Output that is split by process: the sink of each named process, for
/// the replicas the runtime names itself (`web.2`, from its `DYNO`).
pub trait ProcessLines: Send + Sync {
    /// Where the lines of `process` go.
    fn process(&self, process: &str) -> Arc<dyn LineSink>;
}

impl std::fmt::Debug for dyn ProcessLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessLines")
    }
}

/// Sends every line to both sinks, the first first: output that one
/// client watches and the app's log keeps (a one-off run).
pub struct Tee(pub Arc<dyn LineSink>, pub Arc<dyn LineSink>);

impl LineSink for Tee {
    fn line(&self, line: &str) {
        self.0.line(line);
        self.1.line(line);
    }
}

/// Longer lines are split into pieces of this many bytes.
pub const MAX_LINE: usize = 16 * 1024;

/// A WASI stdout/stderr stream that feeds `sink` line by line.
pub fn line_stream(sink: Arc<dyn LineSink>) -> AsyncStdoutStream {
    AsyncStdoutStream::new(
        64 * 1024,
        LineWriter {
            sink,
            pending: Vec::new(),
        },
    )
}

/// Like [`line_stream`], but the stream (and the task that drains it) is
/// only made when the guest first uses it: most requests print nothing,
/// and they should not pay for a stream per instance.
pub struct LazyLines {
    sink: Arc<dyn LineSink>,
    stream: std::sync::OnceLock<AsyncStdoutStream>,
}

impl LazyLines {
    /// Lines go to `sink`.
    pub fn new(sink: Arc<dyn LineSink>) -> Self {
        Self {
            sink,
            stream: std::sync::OnceLock::new(),
        }
    }

    fn stream(&self) -> &AsyncStdoutStream {
        self.stream.get_or_init(|| line_stream(self.sink.clone()))
    }
}

impl wasmtime_wasi::cli::IsTerminal for LazyLines {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LazyLines {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        self.stream().p2_stream()
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        self.stream().async_stream()
    }
}

struct LineWriter {
    sink: Arc<dyn LineSink>,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        self.sink.line(&String::from_utf8_lossy(bytes));
    }

    fn push(&mut self, mut data: &[u8]) {
        while let Some(newline) = data.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                self.emit(&data[..newline]);
            } else {
                self.pending.extend_from_slice(&data[..newline]);
                let line = std::mem::take(&mut self.pending);
                self.emit(&line);
            }
            data = &data[newline + 1..];
        }
        self.pending.extend_from_slice(data);
        while self.pending.len() >= MAX_LINE {
            let rest = self.pending.split_off(MAX_LINE);
            let line = std::mem::replace(&mut self.pending, rest);
            self.emit(&line);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    /// A last line without a newline is still a line.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

/// A sink for tests that keeps every line it gets.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Lines(std::sync::Mutex<Vec<String>>);

#[cfg(test)]
impl LineSink for Lines {
    fn line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

#[cfg(test)]
impl Lines {
    /// The lines so far, leaving none.
    pub(crate) fn taken(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]]) -> Vec<String> {
        let lines = Arc::new(Lines::default());
        let mut writer = LineWriter {
            sink: lines.clone(),
            pending: Vec::new(),
        };
        for chunk in chunks {
            writer.push(chunk);
        }
        drop(writer);
        lines.taken()
    }

    #[test]
    fn a_tee_hands_each_line_to_both_sinks() {
        let (a, b) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
        let tee = Tee(a.clone(), b.clone());
        tee.line("one");
        tee.line("two");
        assert_eq!(a.taken(), ["one", "two"]);
        assert_eq!(b.taken(), ["one", "two"]);
    }

    #[test]
    fn splits_lines_across_writes() {
        assert_eq!(
            collect(&[b"a\nb", b"c\r\n\n", b"tail"]),
            ["a", "bc", "", "tail"]
        );
    }

    #[test]
    fn long_lines_are_cut_and_bad_utf8_made_safe() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let lines = collect(&[&long, b"\n", b"\xff\xfe ok\n"]);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[2].len(), 5);
        assert_eq!(lines[3], "\u{fffd}\u{fffd} ok");
    }
}
