//! Who made a change: `cli`, `api` (another client of the token),
//! `dashboard` or `git`. The API's auth sets it for the request's task,
//! work spawned for the request carries it on, and a release records it
//! (`wpaas releases`, the dashboard's activity). With one API token there
//! is no user to name; this names the door the change came through.

use std::future::Future;

tokio::task_local! {
    static ACTOR: String;
}

/// Who is acting in this task, if anyone was named.
pub fn current() -> Option<String> {
    ACTOR.try_with(Clone::clone).ok()
}

/// Runs `work` as `who` (or as nobody named).
pub async fn acting_as<F: Future>(who: Option<String>, work: F) -> F::Output {
    match who {
        Some(who) => ACTOR.scope(who, work).await,
        None => work.await,
    }
}
