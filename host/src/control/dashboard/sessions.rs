//! Dashboard sessions: a browser that signed in with the API token holds
//! a random session id in an `HttpOnly; SameSite=Strict` cookie; each
//! session has its own CSRF token, which every change must send back in
//! [`CSRF_HEADER`]. Sessions live in the server's memory (a restart signs
//! everyone out) and end after [`SESSION_TTL`] or at sign-out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::control::token::{constant_time_eq, random_hex};

/// The session cookie's name.
pub const COOKIE: &str = "wpaas_session";
/// The header a change made with a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most (the oldest go first): sign-ins cannot grow
/// the server's memory without bound.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    csrf: String,
    expires: Instant,
}

/// The signed-in browsers.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session: its id (the cookie's value) and CSRF token.
    pub fn create(&self) -> std::io::Result<(String, String)> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let mut live = self.live.lock().expect("sessions");
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            let oldest = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                live.remove(&oldest);
            }
        }
        live.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        Ok((id, csrf))
    }

    /// The CSRF token of live session `id`.
    pub fn csrf(&self, id: &str) -> Option<String> {
        let live = self.live.lock().expect("sessions");
        let session = live.get(id)?;
        (session.expires > Instant::now()).then(|| session.csrf.clone())
    }

    /// Whether `given` is live session `id`'s CSRF token.
    pub fn csrf_matches(&self, id: &str, given: &str) -> bool {
        self.csrf(id)
            .is_some_and(|csrf| constant_time_eq(given, csrf.as_bytes()))
    }

    /// Ends session `id`.
    pub fn remove(&self, id: &str) {
        self.live.lock().expect("sessions").remove(id);
    }
}

/// The session id in a `Cookie` header, if any.
pub fn session_id(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_has_its_own_csrf_token_until_it_ends() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.create().unwrap();
        let (other, _) = sessions.create().unwrap();
        assert_ne!(id, other);
        assert!(sessions.csrf_matches(&id, &csrf));
        assert!(!sessions.csrf_matches(&other, &csrf));
        assert!(!sessions.csrf_matches(&id, "forged"));
        sessions.remove(&id);
        assert_eq!(sessions.csrf(&id), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; wpaas_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_id(&headers).as_deref(), Some("abc"));
        headers.insert(http::header::COOKIE, "wpaas_sessionx=1".parse().unwrap());
        assert_eq!(session_id(&headers), None);
    }
}
