//! The pages the router answers with instead of an app, worded as Heroku's:
//! what happened in the visitor's terms and the request id to quote, never
//! the cause. A trap, a limit or a node is an operator's business: the
//! cause goes to the app's log (`app[web.1]`) and the server's log, and the
//! router's access line (`app[router]`) carries the same `request_id`, so
//! one id leads from the page a visitor saw to why.

use http::{HeaderValue, StatusCode};

use crate::runtime::BoxBody;

/// How long a visitor is asked to wait before trying an app in
/// maintenance again (`Retry-After`, seconds).
pub(super) const MAINTENANCE_RETRY_AFTER: &str = "60";

/// Heroku's "Application error" page: the app could not answer (it
/// crashed, timed out, has no web process, or is over capacity).
pub(super) fn application_error(
    status: StatusCode,
    request_id: &HeaderValue,
) -> hyper::Response<BoxBody> {
    page(
        status,
        "Application error",
        "An error occurred in the application and your page could not be served. \
         Please try again in a few moments.\n\
         If you are the application owner, check your logs for details (`wpaas logs --tail`).",
        request_id,
    )
}

/// The page of an app in maintenance mode (`wpaas maintenance:on`): 503
/// with `Retry-After`, as Heroku's "Offline for Maintenance".
pub(super) fn maintenance(request_id: &HeaderValue) -> hyper::Response<BoxBody> {
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Offline for maintenance",
        "This app is undergoing maintenance right now. Please check back later.",
        request_id,
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from_static(MAINTENANCE_RETRY_AFTER),
    );
    response
}

/// No app answers for this Host header (Heroku's "No such app").
pub(super) fn no_such_app(request_id: &HeaderValue) -> hyper::Response<BoxBody> {
    page(
        StatusCode::NOT_FOUND,
        "No such app",
        "There is no app at this address. Apps answer at http://APP.localhost \
         and at the domains added with `wpaas domains:add`.",
        request_id,
    )
}

/// `TITLE`, a blank line, the explanation and the request id.
fn page(
    status: StatusCode,
    title: &str,
    explanation: &str,
    request_id: &HeaderValue,
) -> hyper::Response<BoxBody> {
    let id = request_id.to_str().unwrap_or("");
    crate::respond::text(
        status,
        &format!("{title}\n\n{explanation}\nRequest id: {id}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::body_of;

    #[tokio::test]
    async fn an_application_error_names_the_request_and_nothing_else() {
        let id = HeaderValue::from_static("abc-123");
        let response = application_error(StatusCode::INTERNAL_SERVER_ERROR, &id);
        assert_eq!(response.status(), 500);
        let body = body_of(response).await;
        assert!(body.starts_with("Application error\n"), "{body}");
        assert!(body.ends_with("Request id: abc-123\n"), "{body}");
    }

    #[tokio::test]
    async fn maintenance_is_a_503_to_retry_later() {
        let response = maintenance(&HeaderValue::from_static("r1"));
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()[http::header::RETRY_AFTER],
            MAINTENANCE_RETRY_AFTER
        );
        assert!(body_of(response)
            .await
            .starts_with("Offline for maintenance\n"));
    }
}
