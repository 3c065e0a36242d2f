//! Running a build step: output streamed line by line as it is printed,
//! and the whole process group killed when the build's deadline passes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Why a step did not run to completion.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(std::io::Error),
    /// The deadline passed; the process group was killed.
    TimedOut,
}

/// How long to keep reading after the child exited while something it
/// started still holds its pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// Runs `cmd` (stdin closed) in its own process group, calling `on_line`
/// for each line of stdout and stderr as it arrives. At `deadline` the
/// process group is killed and [`RunError::TimedOut`] returned.
pub(crate) fn run(
    cmd: Command,
    deadline: Instant,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<ExitStatus, RunError> {
    run_with(cmd, deadline, u64::MAX, &mut |_| Ok(()), on_line)
}

/// The longest line passed on; the rest of a longer one is dropped.
pub(crate) const MAX_LINE: usize = 64 << 10;

/// [`run`], calling `on_spawn` once the child started (an error kills it)
/// and passing on at most `max_output` bytes of lines: past that, lines
/// are dropped and counted, and the step is told so once.
pub(crate) fn run_with(
    mut cmd: Command,
    deadline: Instant,
    max_output: u64,
    on_spawn: &mut dyn FnMut(&Child) -> std::io::Result<()>,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<ExitStatus, RunError> {
    let mut budget = Budget {
        left: max_output,
        max: max_output,
        dropped_lines: 0,
        dropped_bytes: 0,
    };
    let result = run_inner(&mut cmd, deadline, on_spawn, &mut |stream, line| {
        budget.pass(stream, line, on_line)
    });
    if budget.dropped_lines > 0 {
        on_line(
            Stream::Stderr,
            &format!(
                "       ({} more lines, {} bytes, of output were dropped past the limit of {} bytes)",
                budget.dropped_lines, budget.dropped_bytes, budget.max
            ),
        );
    }
    result
}

struct Budget {
    left: u64,
    max: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl Budget {
    fn pass(&mut self, stream: Stream, line: &str, on_line: &mut dyn FnMut(Stream, &str)) {
        let cost = line.len() as u64 + 1;
        if self.dropped_lines == 0 && cost <= self.left {
            self.left -= cost;
            on_line(stream, line);
            return;
        }
        if self.dropped_lines == 0 {
            on_line(
                Stream::Stderr,
                &format!(
                    "       (output limit of {} bytes reached: the rest of this step's output is dropped)",
                    self.max
                ),
            );
        }
        self.dropped_lines += 1;
        self.dropped_bytes += cost;
    }
}

fn run_inner(
    cmd: &mut Command,
    deadline: Instant,
    on_spawn: &mut dyn FnMut(&Child) -> std::io::Result<()>,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<ExitStatus, RunError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    if let Err(e) = on_spawn(&child) {
        kill_group(&mut child);
        return Err(RunError::Spawn(e));
    }
    let (tx, rx) = mpsc::channel::<(Stream, String)>();
    if let Some(out) = child.stdout.take() {
        spawn_reader(out, Stream::Stdout, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(err, Stream::Stderr, tx);
    }
    let mut exited: Option<(ExitStatus, Instant)> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            kill_group(&mut child);
            return Err(RunError::TimedOut);
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(50))) {
            Ok((stream, line)) => on_line(stream, &line),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if exited.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some((status, Instant::now()));
            }
        }
        if let Some((status, at)) = exited {
            if at.elapsed() > DRAIN_AFTER_EXIT {
                return Ok(status);
            }
        }
    }
    // Both pipes closed: wait for the exit, still bounded by the deadline.
    if let Some((status, _)) = exited {
        return Ok(status);
    }
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            return Err(RunError::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_reader(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    tx: mpsc::Sender<(Stream, String)>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        let mut skipping = false;
        loop {
            buf.clear();
            match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let whole = buf.last() == Some(&b'\n');
                    // The tail of an overlong line was cut off below.
                    if std::mem::replace(&mut skipping, !whole) {
                        continue;
                    }
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send((stream, line)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Kills the child's whole process group (it leads one), then the child.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_lines_and_returns_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; exit 3"]);
        let mut lines = Vec::new();
        let status = run(
            cmd,
            Instant::now() + Duration::from_secs(20),
            &mut |s, l| lines.push((s, l.to_string())),
        )
        .unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(lines.contains(&(Stream::Stdout, "one".into())));
        assert!(lines.contains(&(Stream::Stderr, "two".into())));
    }

    #[test]
    fn kills_the_group_at_the_deadline() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30; echo never"]);
        let start = Instant::now();
        let mut lines = Vec::new();
        let err = run(cmd, start + Duration::from_millis(800), &mut |_, l| {
            lines.push(l.to_string())
        })
        .unwrap_err();
        assert!(matches!(err, RunError::TimedOut));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(lines, ["started"]);
    }
}
