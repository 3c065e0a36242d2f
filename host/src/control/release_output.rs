//! A release's release-phase output, kept beside its record in
//! `WPAAS_HOME/releases/APP/vN.log` so that `wpaas releases:output vN`
//! (and `config:set`/`rollback`, which get no stream) can show it later, as
//! `builds:output` shows a build's. Written as the release command runs:
//! the heading, the command's lines, and how it ended. Bounded like a
//! build log; a file that cannot be written loses the copy, never the
//! release.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// The most bytes kept of one release's output.
pub const MAX_RELEASE_OUTPUT: u64 = 1 << 20;

/// The file one release phase writes its lines to.
pub struct ReleaseOutputFile {
    file: Mutex<Option<(File, u64)>>,
}

impl ReleaseOutputFile {
    /// Creates (replacing) the file at `path`, parents too.
    pub fn create(path: &Path) -> Self {
        let file = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::create(path));
        let file = match file {
            Ok(file) => Some((file, 0)),
            Err(err) => {
                tracing::warn!(path = %path.display(), "could not keep the release output: {err}");
                None
            }
        };
        Self {
            file: Mutex::new(file),
        }
    }

    /// Appends one line; past [`MAX_RELEASE_OUTPUT`], one line saying the
    /// rest was cut, then nothing.
    pub fn line(&self, line: &str) {
        let mut file = self.file.lock().expect("release output");
        let Some((file, written)) = file.as_mut() else {
            return;
        };
        let len = line.len() as u64 + 1;
        if *written < MAX_RELEASE_OUTPUT {
            // A full disk must not fail the release it is logging.
            let _ = if *written + len <= MAX_RELEASE_OUTPUT {
                writeln!(file, "{line}")
            } else {
                writeln!(
                    file,
                    " !     the rest of this output was cut: a release keeps {} MiB of it",
                    MAX_RELEASE_OUTPUT >> 20
                )
            };
        }
        *written += len;
    }
}

/// The kept output at `path`: `None` when the release kept none (it ran no
/// release command, or ran before outputs were kept).
pub fn read(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_up_to_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("releases/app/v2.log");
        assert_eq!(read(&path).unwrap(), None);
        let out = ReleaseOutputFile::create(&path);
        out.line("-----> Running release command: migrate.wasm");
        out.line("       migrated");
        assert_eq!(
            read(&path).unwrap().unwrap(),
            "-----> Running release command: migrate.wasm\n       migrated\n"
        );
        let long = "x".repeat(MAX_RELEASE_OUTPUT as usize);
        out.line(&long);
        out.line("after the cut");
        let kept = read(&path).unwrap().unwrap();
        assert!(kept.ends_with("a release keeps 1 MiB of it\n"), "{kept}");
        assert!(!kept.contains("after the cut"));
    }
}
