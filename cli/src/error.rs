//! How a failed command reads: `error: CAUSE` on one line, each cause
//! once, and where the CLI knows what to do next a `hint:` line.

use std::fmt;

/// An error that knows what the user can do about it.
#[derive(Debug)]
pub struct Hinted {
    message: String,
    hint: String,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// `error: CAUSE` (and `hint: …` when the error carries one), ready for
/// stderr.
pub fn render(err: &anyhow::Error) -> String {
    let mut text = format!("error: {}", one_line(err));
    let hint = err.chain().find_map(|cause| cause.downcast_ref::<Hinted>());
    if let Some(hinted) = hint {
        text += &format!("\nhint: {}", hinted.hint);
    }
    text
}

/// `rendered` (from [`render`]) with its `error:` in bold red and its
/// `hint:` in cyan, when `colour`.
pub fn paint(rendered: &str, colour: bool) -> String {
    if !colour {
        return rendered.to_string();
    }
    rendered
        .lines()
        .map(|line| {
            if let Some(rest) = line.strip_prefix("error:") {
                format!("\x1b[1;31merror:\x1b[0m{rest}")
            } else if let Some(rest) = line.strip_prefix("hint:") {
                format!("\x1b[36mhint:\x1b[0m{rest}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The cause chain joined with `: `, each cause once. A library error often
/// says its source in its own message too (`could not read X: No such
/// file…` whose source is `No such file…`), and a context often repeats
/// what it wraps; a cause already said is left out, and a cause that
/// extends what was said replaces it.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if line.is_empty() || text.starts_with(line.as_str()) {
            line = text.to_string();
        } else {
            line = format!("{line}: {text}");
        }
    }
    // One line, whatever a cause held.
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[derive(Debug, thiserror::Error)]
    #[error("could not read {path}: {source}")]
    struct ReadError {
        path: String,
        source: std::io::Error,
    }

    fn missing() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::NotFound)
    }

    #[test]
    fn a_source_repeated_in_its_message_shows_once() {
        let err = anyhow::Error::new(ReadError {
            path: "app".into(),
            source: missing(),
        });
        assert_eq!(one_line(&err), format!("could not read app: {}", missing()));
    }

    #[test]
    fn a_context_repeating_its_cause_shows_once() {
        let err = Err::<(), _>(ReadError {
            path: "app".into(),
            source: missing(),
        })
        .context("could not read app")
        .unwrap_err();
        assert_eq!(one_line(&err), format!("could not read app: {}", missing()));
    }

    #[test]
    fn distinct_causes_all_show() {
        let err = Err::<(), _>(missing())
            .context("could not pack app")
            .unwrap_err();
        assert_eq!(one_line(&err), format!("could not pack app: {}", missing()));
    }

    #[test]
    fn a_hint_is_its_own_line() {
        let err = anyhow::Error::new(Hinted::new("no token", "run `wpaas login`"))
            .context("could not start");
        assert_eq!(
            render(&err),
            "error: could not start: no token\nhint: run `wpaas login`"
        );
        assert_eq!(
            paint(&render(&err), true),
            "\x1b[1;31merror:\x1b[0m could not start: no token\n\x1b[36mhint:\x1b[0m run `wpaas login`"
        );
        assert_eq!(paint(&render(&err), false), render(&err));
        let plain = anyhow::anyhow!("two\nlines");
        assert_eq!(render(&plain), "error: two lines");
    }
}
