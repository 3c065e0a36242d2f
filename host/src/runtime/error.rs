//! How a request to a guest can fail, kept apart from how it is shown.

use wasmtime::Trap;

use super::admission::Rejected;

/// A request the guest did not answer normally.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    /// No slot and no room in the queue (or waited too long).
    #[error("{0}")]
    Overloaded(#[from] Rejected),
    /// The request ran past its time limit and was cancelled.
    #[error("request timed out")]
    Timeout,
    /// The guest trapped, panicked, overflowed its stack or ran out of memory.
    #[error("application crashed: {0}")]
    Crashed(String),
    /// The guest finished without producing a valid response.
    #[error("invalid response from application: {0}")]
    BadResponse(String),
    /// The handler returned without ever setting its response (never called
    /// `response-outparam::set`): an application error, 500 as under
    /// `wasmtime serve`, not a malformed answer (502).
    #[error("the handler returned without setting a response")]
    NoResponse,
    /// The request itself was unacceptable (e.g. body too large).
    #[error("{1}")]
    BadRequest(http::StatusCode, String),
    /// The host could not run the guest (e.g. the instance pool is exhausted).
    #[error("could not start an instance: {0}")]
    Unavailable(String),
}

impl WebError {
    /// Classifies an error returned by running guest code.
    pub(crate) fn from_guest(err: wasmtime::Error) -> Self {
        // Instances, memories, tables or stacks of the pool all in use
        // (workers draw on it too): a fast 503, not a crash of the app.
        if err
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return WebError::Unavailable(format!("the server is at capacity ({err})"));
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => WebError::Timeout,
            Some(Trap::StackOverflow) => WebError::Crashed("stack overflow".into()),
            Some(trap) => WebError::Crashed(trap.to_string()),
            None => WebError::Crashed(format!("{err:#}")),
        }
    }

    /// The HTTP status the client sees.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            WebError::Overloaded(_) | WebError::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            WebError::Timeout => S::GATEWAY_TIMEOUT,
            WebError::Crashed(_) | WebError::NoResponse => S::INTERNAL_SERVER_ERROR,
            WebError::BadResponse(_) => S::BAD_GATEWAY,
            WebError::BadRequest(status, _) => *status,
        }
    }

    /// Heroku's router error code for this failure, for logs: H11 for a
    /// full queue or share, H19 for a request that waited in the queue
    /// until its time limit, H12 for one that ran that long.
    pub fn code(&self) -> &'static str {
        match self {
            // It waited its whole time limit in the queue for one of the
            // replica's slots: Heroku's "Backend connection timeout" (the
            // access line's `connect=` is that wait); no instance ran, so
            // it is not H12, a request that ran out of time.
            WebError::Overloaded(Rejected::QueueTimeout) => "H19",
            WebError::Overloaded(_) => "H11",
            WebError::Timeout => "H12",
            WebError::Crashed(_) | WebError::BadResponse(_) | WebError::NoResponse => "H13",
            WebError::BadRequest(..) => "H18",
            WebError::Unavailable(_) => "H10",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_h11_and_a_long_wait_in_it_h19() {
        assert_eq!(WebError::Overloaded(Rejected::QueueFull).code(), "H11");
        assert_eq!(WebError::Overloaded(Rejected::AppShare).code(), "H11");
        let waited = WebError::Overloaded(Rejected::QueueTimeout);
        assert_eq!((waited.code(), waited.status().as_u16()), ("H19", 503));
        assert_eq!(WebError::Timeout.code(), "H12");
    }
}
