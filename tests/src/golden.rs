//! Golden CLI transcripts: a test runs the real `wpaas` commands a user
//! would, and what they print (stdout, stderr, exit code) is compared with
//! `tests/golden/NAME.txt`. Times, ports, digests and temporary paths are
//! filtered to placeholders, so a transcript pins wording and layout and
//! nothing that changes from run to run (uv's and dropshot's convention).
//!
//! `WPAAS_BLESS=1 cargo test …` writes the transcripts instead of comparing;
//! review the diff with `git diff tests/golden` before committing. On a
//! mismatch the actual transcript is left in `target/golden-actual/NAME.txt`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use regex::Regex;

use crate::{workspace_root, Server};

/// One scenario's transcript, compared with its golden file by [`check`].
///
/// [`check`]: Transcript::check
pub struct Transcript {
    name: String,
    text: String,
    redactions: Vec<(String, String)>,
}

impl Transcript {
    /// A transcript to compare with `tests/golden/NAME.txt`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            text: String::new(),
            redactions: Vec::new(),
        }
    }

    /// Writes `placeholder` wherever `literal` appears (a temporary
    /// directory, a token, an address). Longer literals are replaced first.
    pub fn redact(&mut self, literal: impl Into<String>, placeholder: &str) -> &mut Self {
        let literal = literal.into();
        if !literal.is_empty() {
            self.redactions.push((literal, placeholder.to_string()));
            self.redactions
                .sort_by_key(|(literal, _)| std::cmp::Reverse(literal.len()));
        }
        self
    }

    /// Redacts `server`'s home, API address and token.
    pub fn redact_server(&mut self, server: &Server) -> &mut Self {
        self.redact(server.home.display().to_string(), "[HOME]");
        self.redact(format!("{}://{}", server.scheme, server.api), "[API]");
        self.redact(server.token(), "[TOKEN]");
        self
    }

    /// Runs `wpaas ARGS…` against `server` in `dir` and records it.
    pub fn run(&mut self, server: &Server, dir: &Path, args: &[&str]) -> Output {
        let out = server.cli(dir, args);
        self.record(args, &out);
        out
    }

    /// Runs `wpaas ARGS…`, records it, and insists it succeeded.
    pub fn ok(&mut self, server: &Server, dir: &Path, args: &[&str]) -> String {
        let out = self.run(server, dir, args);
        assert!(
            out.status.success(),
            "wpaas {args:?}: {}",
            crate::text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `wpaas ARGS…`, records it, and insists it failed.
    pub fn fails(&mut self, server: &Server, dir: &Path, args: &[&str]) -> String {
        let out = self.run(server, dir, args);
        assert!(
            !out.status.success(),
            "wpaas {args:?} should fail: {}",
            crate::text(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Records a command run some other way (`$ wpaas ARGS…`, its output).
    pub fn record(&mut self, args: &[&str], out: &Output) {
        let shown: Vec<String> = args.iter().map(|a| shell_word(a)).collect();
        self.text += &format!("$ wpaas {}\n", shown.join(" "));
        self.section("stdout", &out.stdout);
        self.section("stderr", &out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(code) => self.text += &format!("[exit {code}]\n"),
            None => self.text += "[killed by a signal]\n",
        }
        self.text += "\n";
    }

    /// Adds a line of the test's own (what happened between commands).
    pub fn note(&mut self, text: &str) {
        self.text += &format!("# {text}\n\n");
    }

    fn section(&mut self, name: &str, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        if text.trim().is_empty() {
            return;
        }
        self.text += &format!("--- {name}\n");
        for line in text.trim_end().lines() {
            self.text += line.trim_end();
            self.text += "\n";
        }
    }

    /// The transcript with volatile parts filtered.
    pub fn filtered(&self) -> String {
        let mut text = self.text.clone();
        for (literal, placeholder) in &self.redactions {
            text = text.replace(literal.as_str(), placeholder);
        }
        filter(&text)
    }

    /// Compares with `tests/golden/NAME.txt` (or writes it under
    /// `WPAAS_BLESS=1`); panics with both texts' first differing line.
    pub fn check(&self) {
        let actual = self.filtered();
        let golden = golden_path(&self.name);
        if std::env::var_os("WPAAS_BLESS").is_some() {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected == actual {
            return;
        }
        let dir = workspace_root().join("target/golden-actual");
        std::fs::create_dir_all(&dir).unwrap();
        let actual_path = dir.join(format!("{}.txt", self.name));
        std::fs::write(&actual_path, &actual).unwrap();
        let at = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "transcript {} differs from {} at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
             whole actual transcript: {}\n(if the change is meant, rerun with WPAAS_BLESS=1 and review `git diff tests/golden`)",
            self.name,
            golden.display(),
            at + 1,
            expected.lines().nth(at).unwrap_or("<end>"),
            actual.lines().nth(at).unwrap_or("<end>"),
            actual_path.display(),
        );
    }
}

fn golden_path(name: &str) -> PathBuf {
    workspace_root()
        .join("tests/golden")
        .join(format!("{name}.txt"))
}

fn shell_word(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=:./,@%+".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Replaces what changes from run to run with placeholders.
pub fn filter(text: &str) -> String {
    static FILTERS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let filters = FILTERS.get_or_init(|| {
        [
            // RFC 3339 times, with or without fraction and offset.
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                "[TIME]",
            ),
            // Clock times (a log line's prefix).
            (r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b", "[CLOCK]"),
            // Loopback addresses with a port picked at run time.
            (r"(127\.0\.0\.1|localhost|\[::1\]):\d+", "$1:[PORT]"),
            // Error and request ids (uuid v4), before the digests
            // that would take their last group).
            (
                r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                "[UUID]",
            ),
            // sha256 digests (whole or shortened to 12).
            (r"\b[0-9a-f]{64}\b", "[SHA256]"),
            (r"\b[0-9a-f]{12}\b", "[DIGEST]"),
            // Elapsed times and ages.
            (r"\b\d+(\.\d+)?\s?(ms|µs|us|ns)\b", "[ELAPSED]"),
            (
                r"\b\d+(\.\d+)?\s?(s|m|h|d)( \d+(\.\d+)?\s?(s|m))? ago\b",
                "[AGE] ago",
            ),
            (r"\bin \d+(\.\d+)?\s?s\b", "in [ELAPSED]"),
            // Sizes that depend on the compiler (module, slug, upload);
            // MiB and up are left, as limits are written in them.
            (r"\b\d+(\.\d+)? ?(B|KB|KiB|bytes)\b", "[SIZE]"),
            // Process ids.
            (r"\bpid \d+\b", "pid [PID]"),
        ]
        .into_iter()
        .map(|(pattern, placeholder)| (Regex::new(pattern).unwrap(), placeholder))
        .collect()
    });
    let mut text = text.to_string();
    for (regex, placeholder) in filters {
        text = regex.replace_all(&text, *placeholder).into_owned();
    }
    // A commit or slug shortened to 7 (`Deploy 7a271f6`): hex with a
    // digit in it, so that words such as "defaced" stay.
    static SHORT: OnceLock<Regex> = OnceLock::new();
    let short = SHORT.get_or_init(|| Regex::new(r"\b[0-9a-f]{7}\b").unwrap());
    short
        .replace_all(&text, |found: &regex::Captures| {
            let word = &found[0];
            if word.bytes().any(|b| b.is_ascii_digit()) {
                "[SHORT]".to_string()
            } else {
                word.to_string()
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn volatile_parts_become_placeholders() {
        assert_eq!(
            filter("v3 2026-12-06T22:49:06.123Z http://127.0.0.1:40123 sha 0123456789ab"),
            "v3 [TIME] http://127.0.0.1:[PORT] sha [DIGEST]"
        );
        assert_eq!(
            filter("done in 130 ms, 4s ago"),
            "done in [ELAPSED], [AGE] ago"
        );
        assert_eq!(filter("limits web: 30s"), "limits web: 30s");
        assert_eq!(filter("Deploy 7a271f6 defaced"), "Deploy [SHORT] defaced");
        assert_eq!(
            filter("Request id: 7326cc7e-9507-4721-ab04-0123456789ab"),
            "Request id: [UUID]"
        );
    }
}
