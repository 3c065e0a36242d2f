//! Streamed answers (deploys, one-off runs): text lines, then one result
//! line.
//!
//! A deploy streams its build's lines (`-----> Building…`) and ends with
//! `RESULT_PREFIX` + a [`crate::builds::DeployResult`]; a run streams
//! [`crate::run::RunLine`]s and ends with `RESULT_PREFIX` + a
//! [`crate::run::RunResult`]. A stream without a result line broke off.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The last line of a stream starts with this, then the JSON result.
pub const RESULT_PREFIX: &str = "##wpaas-result ";

/// One line of a streamed answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamLine<'a, T> {
    /// A line to show.
    Line(&'a str),
    /// The result: the stream is over.
    Result(T),
}

/// Reads one line (without its newline). A result line that does not parse
/// as `T` is an error naming what it held.
pub fn read_line<T: DeserializeOwned>(line: &str) -> Result<StreamLine<'_, T>, StreamError> {
    match line.strip_prefix(RESULT_PREFIX) {
        Some(json) => serde_json::from_str(json)
            .map(StreamLine::Result)
            .map_err(|err| StreamError(format!("{err} in {json}"))),
        None => Ok(StreamLine::Line(line)),
    }
}

/// The result line for `result` (no newline).
pub fn result_line<T: Serialize>(result: &T) -> String {
    let json = serde_json::to_string(result).expect("API results serialize");
    format!("{RESULT_PREFIX}{json}")
}

/// A result line that is not what the stream promised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server sent an unreadable result: {0}")]
pub struct StreamError(String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builds::DeployResult;

    #[test]
    fn result_lines_round_trip() {
        let released = DeployResult::Released {
            release: 3,
            url: "http://a.localhost:8080".into(),
        };
        let line = result_line(&released);
        assert_eq!(
            read_line::<DeployResult>(&line).unwrap(),
            StreamLine::Result(released)
        );
        let failed = DeployResult::Failed {
            error: "boom".into(),
        };
        assert_eq!(
            read_line::<DeployResult>(&result_line(&failed)).unwrap(),
            StreamLine::Result(failed)
        );
        assert_eq!(
            read_line::<DeployResult>("-----> Building").unwrap(),
            StreamLine::Line("-----> Building")
        );
        assert!(read_line::<DeployResult>("##wpaas-result {\"nope\":1}").is_err());
    }
}
