//! The error body every failed API call answers with.

use serde::{Deserialize, Serialize};

/// What kind of failure an error is; the client branches on this, never on
/// the message's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule (a bad name, a bad value).
    Invalid,
    /// No API token, or the wrong one.
    Unauthorized,
    /// The app, release, build, domain or route does not exist.
    NotFound,
    /// The request clashes with the current state (the app exists already,
    /// the domain is taken, there is nothing to roll back to).
    Conflict,
    /// The body is larger than the server accepts.
    TooLarge,
    /// The server cannot do it now (a limit is reached, a dependency is
    /// down); trying again later may work.
    Unavailable,
    /// The server failed; the detail is in its log under the request id.
    Internal,
    /// A code this version of the contract does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status that carries this code: the one place the two meet.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Invalid => 422,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
        }
    }

    /// The code an error body without one (an older server) most likely
    /// meant, from its status.
    pub fn from_status(status: u16) -> ErrorCode {
        match status {
            400 | 422 => ErrorCode::Invalid,
            401 | 403 => ErrorCode::Unauthorized,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::TooLarge,
            429 | 503 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }

    /// The code's name on the wire (`not_found`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "invalid",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": "one line", "code": "not_found"}`: the body of every 4xx/5xx
/// answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error}")]
pub struct ErrorBody {
    /// One line for a person: the cause, and where useful what to do.
    pub error: String,
    /// What kind of failure it is. Missing from an older server's body:
    /// [`ErrorBody::from_response`] fills it in from the status.
    #[serde(default = "unknown_code")]
    pub code: ErrorCode,
    /// For [`ErrorCode::Internal`]: the id under which the server logged the
    /// detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn unknown_code() -> ErrorCode {
    ErrorCode::Unknown
}

impl ErrorBody {
    /// An error of `code` saying `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: message.into(),
            code,
            request_id: None,
        }
    }

    /// Reads the body of a failed answer with `status`. A body that is not
    /// an error body (a proxy's HTML page, say) still becomes one, quoting
    /// its first line.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(mut parsed) => {
                if parsed.code == ErrorCode::Unknown {
                    parsed.code = ErrorCode::from_status(status);
                }
                parsed
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let first = text.lines().next().unwrap_or("").trim();
                let error = if first.is_empty() {
                    format!("the server answered HTTP {status}")
                } else {
                    format!("the server answered HTTP {status}: {first}")
                };
                ErrorBody::new(ErrorCode::from_status(status), error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_map_to_one_status_each() {
        for code in [
            ErrorCode::Invalid,
            ErrorCode::Unauthorized,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::TooLarge,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(ErrorCode::from_status(code.status()), code);
        }
    }

    #[test]
    fn old_and_foreign_bodies_still_read() {
        let old = ErrorBody::from_response(404, br#"{"error":"no such app: \"x\""}"#);
        assert_eq!(old.code, ErrorCode::NotFound);
        assert_eq!(old.error, "no such app: \"x\"");
        let newer = ErrorBody::from_response(500, br#"{"error":"e","code":"on_fire"}"#);
        assert_eq!(newer.code, ErrorCode::Internal);
        let html = ErrorBody::from_response(502, b"<html>bad gateway</html>\nmore");
        assert_eq!(
            html.error,
            "the server answered HTTP 502: <html>bad gateway</html>"
        );
    }
}
