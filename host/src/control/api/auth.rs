//! Who may use the API: a client with `Authorization: Bearer TOKEN` (the
//! CLI, git), or a dashboard session — its cookie, and for every change
//! (any method but GET and HEAD) its CSRF token in `X-CSRF-Token`, which a
//! page of another site cannot know. The dashboard calls the same API as
//! the CLI; there is no other way in.

use std::sync::Arc;

use crate::control::dashboard::sessions::{self, Sessions};
use crate::control::error::PlatformError;
use crate::control::token::constant_time_eq;

/// The API token and the dashboard's sessions.
pub struct Auth {
    token: Arc<str>,
    /// Signed-in browsers.
    pub sessions: Sessions,
    /// Session cookies are `Secure` (the API serves TLS).
    pub secure_cookies: bool,
}

impl Auth {
    /// Requests must carry `token`, or a session.
    pub fn new(token: Arc<str>, secure_cookies: bool) -> Self {
        Self {
            token,
            sessions: Sessions::default(),
            secure_cookies,
        }
    }

    /// Whether `given` is the API token.
    pub fn is_token(&self, given: &str) -> bool {
        constant_time_eq(given.trim(), self.token.as_bytes())
    }

    /// Lets the request through, saying who it is (see
    /// [`crate::control::actor`]): `cli` (the token, from the wpaas CLI),
    /// `api` (the token, from another client) or `dashboard` (a session);
    /// or says why not.
    pub fn check(
        &self,
        method: &http::Method,
        headers: &http::HeaderMap,
    ) -> Result<&'static str, PlatformError> {
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(given) = bearer {
            if !self.is_token(given) {
                return Err(unauthorized());
            }
            let cli = headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|agent| agent.starts_with("wpaas-cli/"));
            return Ok(if cli { "cli" } else { "api" });
        }
        let Some(id) = sessions::session_id(headers) else {
            return Err(unauthorized());
        };
        if self.sessions.csrf(&id).is_none() {
            return Err(PlatformError::unauthorized(
                "your dashboard session ended; sign in again",
            ));
        }
        if method == http::Method::GET || method == http::Method::HEAD {
            return Ok("dashboard");
        }
        let csrf = headers
            .get(sessions::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if self.sessions.csrf_matches(&id, csrf) {
            Ok("dashboard")
        } else {
            Err(PlatformError::unauthorized(
                "missing or wrong X-CSRF-Token for this session",
            ))
        }
    }
}

fn unauthorized() -> PlatformError {
    PlatformError::unauthorized(
        "missing or invalid API token (run `wpaas login`, or set WPAAS_TOKEN)",
    )
}
