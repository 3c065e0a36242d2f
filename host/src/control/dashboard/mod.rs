//! The dashboard: a page and a script, embedded in the binary (it works
//! offline), served on the API's port under `/dashboard`. The script draws
//! every view from the JSON API — the same typed API the CLI uses — with
//! the browser's session cookie; this module only signs browsers in and
//! out and serves the files.
//!
//! * `GET /` redirects to `/dashboard`.
//! * `GET /dashboard`, `/dashboard/app.js`, `/dashboard/app.css`: the
//!   files (they hold no data: every view is fetched from the API, which
//!   refuses requests without a token or session).
//! * `POST /dashboard/session` `{"token": "…"}` (JSON only, so a form of
//!   another site cannot post it): signs in, sets the session cookie
//!   (`HttpOnly; SameSite=Strict; Path=/`, `Secure` under TLS) and answers
//!   `{"csrf": "…"}`; `GET` answers the same for a live session, `DELETE`
//!   (with the CSRF header) signs out.

pub mod sessions;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use super::api::auth::Auth;
use super::error::PlatformError;
use crate::respond;
use crate::runtime::BoxBody;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// What the dashboard's pages may load: only their own files and API.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether `path` is the dashboard's (else it is the API's).
pub fn handles(path: &str) -> bool {
    path == "/" || path == "/dashboard" || path.starts_with("/dashboard/")
}

/// The dashboard's routes.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/", get(|| async { redirect("/dashboard") }))
        .route(
            "/dashboard",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/dashboard/session",
            get(current).post(sign_in).delete(sign_out),
        )
        .fallback(|| async {
            reply(respond::text(
                StatusCode::NOT_FOUND,
                "no such dashboard page",
            ))
        })
        .with_state(auth)
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

#[derive(Serialize)]
struct Signed {
    csrf: String,
}

/// `POST /dashboard/session`.
async fn sign_in(State(auth): State<Arc<Auth>>, req: Request) -> axum::response::Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return error(PlatformError::malformed(
            "sign in with a JSON body {\"token\": …}",
        ));
    }
    let body = match http_body_util::Limited::new(req.into_body(), 64 << 10)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error(PlatformError::malformed(format!(
                "could not read body: {e}"
            )))
        }
    };
    let Ok(SignIn { token }) = serde_json::from_slice(&body) else {
        return error(PlatformError::malformed(
            "sign in with a JSON body {\"token\": …}",
        ));
    };
    if !auth.is_token(&token) {
        return error(PlatformError::unauthorized(
            "that is not the API token (it is in WPAAS_HOME/token on the server)",
        ));
    }
    let (id, csrf) = match auth.sessions.create() {
        Ok(made) => made,
        Err(e) => {
            return error(PlatformError::Internal(anyhow::anyhow!(
                "making a session: {e}"
            )))
        }
    };
    let secure = if auth.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        sessions::COOKIE,
        sessions::SESSION_TTL.as_secs()
    );
    let mut response = respond::json(StatusCode::OK, &Signed { csrf });
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    reply(response)
}

/// `GET /dashboard/session`: the CSRF token of the browser's session.
async fn current(State(auth): State<Arc<Auth>>, req: Request) -> axum::response::Response {
    match sessions::session_id(req.headers()).and_then(|id| auth.sessions.csrf(&id)) {
        Some(csrf) => reply(respond::json(StatusCode::OK, &Signed { csrf })),
        None => error(PlatformError::unauthorized("not signed in")),
    }
}

/// `DELETE /dashboard/session`: signs out (a change: needs the CSRF token).
async fn sign_out(State(auth): State<Arc<Auth>>, req: Request) -> axum::response::Response {
    if let Err(err) = auth.check(req.method(), req.headers()) {
        return error(err);
    }
    if let Some(id) = sessions::session_id(req.headers()) {
        auth.sessions.remove(&id);
    }
    let mut response = respond::text(StatusCode::OK, "signed out");
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        sessions::COOKIE
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    reply(response)
}

fn file(content_type: &'static str, text: &'static str) -> axum::response::Response {
    let mut response = respond::full(StatusCode::OK, content_type, text);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    reply(response)
}

fn redirect(to: &'static str) -> axum::response::Response {
    let mut response = respond::text(StatusCode::FOUND, "the dashboard is at /dashboard");
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    reply(response)
}

fn error(err: PlatformError) -> axum::response::Response {
    reply(super::api::error_response(err))
}

fn reply(response: hyper::Response<BoxBody>) -> axum::response::Response {
    response.map(axum::body::Body::new)
}
