//! What the app's log hears of a request its replica did not answer. The
//! visitor saw only an error page with the request id (the router's
//! `pages`); the replica's line carries the same id and the cause:
//! `app[web.1]: Error H13: request_id=ID crashed: trap: …`. Refusals
//! before the guest ran (a full queue, a body too large) are the router
//! line's business, not the replica's.

use std::time::Duration;

use super::output::LineSink;
use super::{ProcessEnv, WebError};

/// Where the replica `env` names writes its lines; `None` outside a
/// server (`wpaas up` prints to the terminal, where the router's line is).
pub(super) fn sink(env: &ProcessEnv) -> Option<std::sync::Arc<dyn LineSink>> {
    let output = env.output.as_ref()?;
    Some(output.process(env.dyno.as_deref().unwrap_or("web")))
}

/// The request's id as the router set it (`X-Request-Id`); empty for a
/// request of the platform's own (the health check).
pub(super) fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(crate::router::REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Says why `request_id` got no answer, if the guest is why; `limit` is
/// the request time limit it ran into, if it did.
pub(super) fn tell(sink: &dyn LineSink, request_id: &str, err: &WebError, limit: Duration) {
    if let Some(why) = cause(err, limit) {
        sink.line(&line(err.code(), request_id, &why));
    }
}

/// Says why the response to `request_id` broke off after its head was
/// sent (the router's line says H18).
pub(super) fn tell_late(sink: &dyn LineSink, request_id: &str, err: &WebError, limit: Duration) {
    if let Some(why) = cause(err, limit) {
        sink.line(&line(
            "H18",
            request_id,
            &format!("{why} after its response began"),
        ));
    }
}

fn line(code: &str, request_id: &str, why: &str) -> String {
    match request_id {
        "" => format!("Error {code}: {why}"),
        id => format!("Error {code}: request_id={id} {why}"),
    }
}

fn cause(err: &WebError, limit: Duration) -> Option<String> {
    match err {
        WebError::Crashed(reason) => Some(format!("crashed: {}", as_trap(reason))),
        WebError::Timeout => Some(format!("timed out after {limit:?} (ps:limits --timeout)")),
        WebError::BadResponse(_) | WebError::NoResponse => Some(err.to_string()),
        WebError::Overloaded(_) | WebError::BadRequest(..) | WebError::Unavailable(_) => None,
    }
}

/// How a crash reads: a wasm trap (a Rust panic is one, after the panic
/// message the guest printed) as `trap: REASON`, so one word finds them
/// all; other crashes (a CGI exit status) as they are.
fn as_trap(reason: &str) -> String {
    match reason.strip_prefix("wasm trap: ") {
        Some(trap) => format!("trap: {trap}"),
        None if reason == "stack overflow" => format!("trap: {reason}"),
        None => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::output::Lines;

    #[test]
    fn crashes_and_timeouts_are_told_with_the_request_id_refusals_are_not() {
        let lines = Lines::default();
        let limit = Duration::from_secs(30);
        let trap = WebError::Crashed("wasm trap: wasm `unreachable` instruction executed".into());
        tell(&lines, "r1", &trap, limit);
        tell(&lines, "r2", &WebError::Timeout, limit);
        tell(
            &lines,
            "",
            &WebError::Crashed("stack overflow".into()),
            limit,
        );
        tell_late(&lines, "r3", &trap, limit);
        let full = WebError::Overloaded(super::super::admission::Rejected::QueueFull);
        tell(&lines, "r4", &full, limit);
        assert_eq!(
            lines.taken(),
            [
                "Error H13: request_id=r1 crashed: trap: wasm `unreachable` instruction executed",
                "Error H12: request_id=r2 timed out after 30s (ps:limits --timeout)",
                "Error H13: crashed: trap: stack overflow",
                "Error H18: request_id=r3 crashed: trap: wasm `unreachable` instruction executed after its response began",
            ]
        );
    }
}
