//! An app's log stream: `GET /apps/APP/logs`.

use serde::{Deserialize, Deserializer, Serialize};

/// `GET /apps/APP/logs?n=100&tail=true&ps=web.1&source=router&format=json`:
/// the last `n` lines passing the filters, then (with `tail`) every new
/// line until the client hangs up. Text lines are `TIME app[PROCESS]:
/// MESSAGE`; with `format=json` each line is a [`LogLine`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// How many past lines (default 100).
    #[serde(default = "default_lines")]
    pub n: usize,
    /// Keep the stream open for new lines.
    #[serde(default, deserialize_with = "flag")]
    pub tail: bool,
    /// `web` (every replica of the type) or `web.1` (one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ps: Option<String>,
    /// `app`, `router`, `build`, `api` or `scaler`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `json` for [`LogLine`] objects (ndjson); otherwise text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

fn default_lines() -> usize {
    100
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            n: default_lines(),
            tail: false,
            ps: None,
            source: None,
            format: None,
        }
    }
}

impl LogQuery {
    /// Whether lines are [`LogLine`] JSON objects.
    pub fn json(&self) -> bool {
        self.format.as_deref() == Some("json")
    }

    /// The query string (without `?`). Values are app-chosen words
    /// (process and source names), percent-encoded where needed.
    pub fn to_query(&self) -> String {
        let mut query = format!("n={}&tail={}", self.n, self.tail);
        for (key, value) in [
            ("ps", &self.ps),
            ("source", &self.source),
            ("format", &self.format),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                query.push_str(&format!("&{key}={}", percent_encode(value)));
            }
        }
        query
    }
}

/// `true`/`1` or `false`/`0`/empty, as a query string says it.
fn flag<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    let text = String::deserialize(de)?;
    match text.as_str() {
        "1" | "true" => Ok(true),
        "" | "0" | "false" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "`{}` is not true or false",
            other.escape_debug()
        ))),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One log line as `format=json` sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// RFC 3339 with microseconds, UTC.
    pub time: String,
    /// `app` for the app's own processes; else `router`, `build`, `api`,
    /// `scaler`.
    pub source: String,
    /// `web.1`, `worker.2`, `run.1`, `router`, …
    pub process: String,
    /// The text, without a newline.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_what_it_needs_to() {
        let query = LogQuery {
            n: 5,
            tail: true,
            ps: Some("web.1".into()),
            source: None,
            format: Some("json".into()),
        };
        assert_eq!(query.to_query(), "n=5&tail=true&ps=web.1&format=json");
        let odd = LogQuery {
            ps: Some("a&b=c".into()),
            ..LogQuery::default()
        };
        assert_eq!(odd.to_query(), "n=100&tail=false&ps=a%26b%3Dc");
    }
}
