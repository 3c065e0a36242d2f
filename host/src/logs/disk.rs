//! The log files: `WPAAS_HOME/logs/APP.log`, append-only, one line per
//! log line. A file may grow to twice the kept lines; then it is rewritten
//! with the newest half, so disk use is bounded and appends stay cheap.
//! One thread writes every file, fed by a bounded queue, so no request or
//! guest ever waits for the disk (nor wakes the writer per line: under load
//! it drains the queue every 20 ms).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use super::LogLine;

/// Work for the writer.
pub(super) enum Op {
    /// Append a formatted line to an app's file.
    Append(String, String),
    /// Delete an app's file.
    Remove(String),
    /// Move an app's file to its new name (the app was renamed).
    Rename(String, String),
}

/// While lines keep coming, the writer drains its queue this often.
const BATCH: Duration = Duration::from_millis(20);

fn path(dir: &Path, app: &str) -> PathBuf {
    dir.join(format!("{app}.log"))
}

/// The last `keep` lines of every app's file, and each file's line count.
#[allow(clippy::type_complexity)]
pub(super) fn read_back(
    dir: &Path,
    keep: usize,
) -> std::io::Result<(Vec<(String, Vec<LogLine>)>, HashMap<String, usize>)> {
    let mut kept = Vec::new();
    let mut counts = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(app) = name.strip_suffix(".log") else {
            continue;
        };
        let (lines, count) = tail(&entry.path(), keep)?;
        counts.insert(app.to_string(), count);
        kept.push((
            app.to_string(),
            lines.iter().filter_map(|l| LogLine::parse(l)).collect(),
        ));
    }
    Ok((kept, counts))
}

/// The last `keep` lines of a file and how many it has.
fn tail(path: &Path, keep: usize) -> std::io::Result<(Vec<String>, usize)> {
    let mut lines = std::collections::VecDeque::with_capacity(keep);
    let mut count = 0;
    for line in BufReader::new(File::open(path)?).lines() {
        // A torn last line (a crash mid-write) or bad bytes: skip it.
        let Ok(line) = line else { continue };
        count += 1;
        if lines.len() == keep {
            lines.pop_front();
        }
        lines.push_back(line);
    }
    Ok((lines.into(), count))
}

/// Where the last `keep` newline-terminated lines of `data` start.
fn tail_start(data: &[u8], keep: usize) -> usize {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == keep {
                return i + 1;
            }
        }
    }
    0
}

struct Writer {
    dir: PathBuf,
    keep: usize,
    files: HashMap<String, (BufWriter<File>, usize)>,
    counts: HashMap<String, usize>,
}

impl Writer {
    fn append(&mut self, app: &str, line: &str) -> std::io::Result<()> {
        if !self.files.contains_key(app) {
            let file = File::options()
                .create(true)
                .append(true)
                .open(path(&self.dir, app))?;
            let count = self.counts.remove(app).unwrap_or(0);
            self.files.insert(
                app.to_string(),
                (BufWriter::with_capacity(64 * 1024, file), count),
            );
        }
        let (file, count) = self.files.get_mut(app).expect("opened");
        writeln!(file, "{line}")?;
        *count += 1;
        if *count >= 2 * self.keep {
            self.compact(app)?;
        }
        Ok(())
    }

    /// Rewrites `app`'s file with its newest `keep` lines (a byte scan for
    /// the cut, one write: no per-line work).
    fn compact(&mut self, app: &str) -> std::io::Result<()> {
        if let Some((mut file, _)) = self.files.remove(app) {
            file.flush()?;
        }
        let path = path(&self.dir, app);
        let data = std::fs::read(&path)?;
        let cut = tail_start(&data, self.keep);
        let temporary = path.with_extension("log.tmp");
        let mut out = File::create(&temporary)?;
        out.write_all(&data[cut..])?;
        out.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        let kept = data[cut..].iter().filter(|&&b| b == b'\n').count();
        self.counts.insert(app.to_string(), kept);
        Ok(())
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Append(app, line) => {
                if let Err(err) = self.append(&app, &line) {
                    tracing::warn!(app, "could not write the log file: {err}");
                }
            }
            Op::Remove(app) => self.remove(&app),
            Op::Rename(old, new) => self.rename(&old, &new),
        }
    }

    fn rename(&mut self, old: &str, new: &str) {
        if let Some((mut file, count)) = self.files.remove(old) {
            let _ = file.flush();
            // Reopened under the new name at its next line.
            self.counts.insert(new.to_string(), count);
        } else if let Some(count) = self.counts.remove(old) {
            self.counts.insert(new.to_string(), count);
        }
        let (from, to) = (path(&self.dir, old), path(&self.dir, new));
        if let Err(err) = std::fs::rename(&from, &to) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(old, new, "could not move the log file: {err}");
            }
        }
    }

    fn remove(&mut self, app: &str) {
        self.files.remove(app);
        self.counts.remove(app);
        let _ = std::fs::remove_file(path(&self.dir, app));
    }

    fn flush(&mut self) {
        for (file, _) in self.files.values_mut() {
            let _ = file.flush();
        }
    }
}

/// Starts the writer thread; it ends when every sender is gone.
pub(super) fn spawn_writer(
    dir: PathBuf,
    keep: usize,
    counts: HashMap<String, usize>,
    rx: Receiver<Op>,
) -> std::io::Result<()> {
    let mut writer = Writer {
        dir,
        keep,
        files: HashMap::new(),
        counts,
    };
    std::thread::Builder::new()
        .name("wpaas-logs".into())
        .spawn(move || loop {
            // Idle: sleep until a line comes.
            let Ok(op) = rx.recv() else { return };
            writer.apply(op);
            // Busy: write what has piled up, flush, then let the next
            // lines pile up for a moment instead of waking per line.
            loop {
                let mut wrote = false;
                loop {
                    match rx.try_recv() {
                        Ok(op) => {
                            writer.apply(op);
                            wrote = true;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            writer.flush();
                            return;
                        }
                    }
                }
                writer.flush();
                if !wrote {
                    break;
                }
                std::thread::sleep(BATCH);
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cut_keeps_the_last_lines() {
        let data = b"a\nb\nc\n";
        assert_eq!(&data[super::tail_start(data, 2)..], b"b\nc\n");
        assert_eq!(super::tail_start(data, 3), 0);
        assert_eq!(super::tail_start(data, 10), 0);
    }
}
