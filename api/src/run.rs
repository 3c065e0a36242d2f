//! One-off processes: `POST /apps/APP/run`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /apps/APP/run`: run `command` (a module of the slug and its
/// arguments) once with the release's config plus `env`. The answer
/// streams [`RunLine`]s and ends with a [`RunResult`] (see
/// [`crate::stream`]); a client that hangs up stops the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// `["jobs.wasm", "--once"]`.
    pub command: Vec<String>,
    /// Extra environment for this run only.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Which stream a line of a one-off process came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fd {
    /// Standard output, `1 TEXT` on the wire.
    Stdout,
    /// Standard error, `2 TEXT` on the wire.
    Stderr,
}

/// One line of a one-off process's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLine<'a> {
    /// Where it was written.
    pub fd: Fd,
    /// The text, without its newline.
    pub text: &'a str,
}

impl<'a> RunLine<'a> {
    /// The wire form: `1 TEXT` or `2 TEXT` (no newline).
    pub fn encode(fd: Fd, text: &str) -> String {
        match fd {
            Fd::Stdout => format!("1 {text}"),
            Fd::Stderr => format!("2 {text}"),
        }
    }

    /// Reads the wire form; a line of another shape (a notice from the
    /// server, say) is shown on stderr as it is.
    pub fn decode(line: &'a str) -> RunLine<'a> {
        match line.split_at_checked(2) {
            Some(("1 ", text)) => RunLine {
                fd: Fd::Stdout,
                text,
            },
            Some(("2 ", text)) => RunLine {
                fd: Fd::Stderr,
                text,
            },
            _ => match line {
                "1" => RunLine {
                    fd: Fd::Stdout,
                    text: "",
                },
                "2" => RunLine {
                    fd: Fd::Stderr,
                    text: "",
                },
                _ => RunLine {
                    fd: Fd::Stderr,
                    text: line,
                },
            },
        }
    }
}

/// The last line of a run's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The exit code: the process's own, or 134 for a trap, 143 when it
    /// was stopped (a timeout, a client that left).
    pub exit: i32,
    /// Its name, `run.N`.
    pub process: String,
    /// How it ended, in words (`exited with status 0`, `trapped: …`).
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for fd in [Fd::Stdout, Fd::Stderr] {
            for text in ["", "hello", "2 not a prefix", " lead"] {
                let wire = RunLine::encode(fd, text);
                assert_eq!(RunLine::decode(&wire), RunLine { fd, text });
            }
        }
        assert_eq!(
            RunLine::decode("notice"),
            RunLine {
                fd: Fd::Stderr,
                text: "notice"
            }
        );
    }
}
