//! The log files: `WPAAS_HOME/logs/APP.log`, append-only, one line per
//! log line. A file may grow to twice the kept lines; then it is rewritten
//! with the newest half, so disk use is bounded and appends stay cheap.
//! One thread writes every file, fed by a bounded queue, so no request or
//! guest ever waits for the disk.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};

use super::LogLine;

/// Work for the writer.
pub(super) enum Op {
    /// Append a formatted line to an app's file.
    Append(String, String),
    /// Delete an app's file.
    Remove(String),
}

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
            self.files
                .insert(app.to_string(), (BufWriter::new(file), count));
        }
        let (file, count) = self.files.get_mut(app).expect("opened");
        writeln!(file, "{line}")?;
        *count += 1;
        if *count >= 2 * self.keep {
            self.compact(app)?;
        }
        Ok(())
    }

    /// Rewrites `app`'s file with its newest `keep` lines.
    fn compact(&mut self, app: &str) -> std::io::Result<()> {
        if let Some((mut file, _)) = self.files.remove(app) {
            file.flush()?;
        }
        let path = path(&self.dir, app);
        let (lines, _) = tail(&path, self.keep)?;
        let temporary = path.with_extension("log.tmp");
        let mut out = BufWriter::new(File::create(&temporary)?);
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        self.counts.insert(app.to_string(), lines.len());
        Ok(())
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
            // Write what is queued, then flush once the queue is empty: a
            // line is on disk within moments, in big writes under load.
            let op = match rx.try_recv() {
                Ok(op) => op,
                Err(TryRecvError::Empty) => {
                    writer.flush();
                    match rx.recv() {
                        Ok(op) => op,
                        Err(_) => return,
                    }
                }
                Err(TryRecvError::Disconnected) => {
                    writer.flush();
                    return;
                }
            };
            match op {
                Op::Append(app, line) => {
                    if let Err(err) = writer.append(&app, &line) {
                        tracing::warn!(app, "could not write the log file: {err}");
                    }
                }
                Op::Remove(app) => writer.remove(&app),
            }
        })?;
    Ok(())
}
