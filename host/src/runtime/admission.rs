//! Bounded concurrency with a bounded queue: the capacity of a web process.
//!
//! A request takes a slot for as long as its instance lives (including while
//! its response body streams). When all slots are busy it waits in a queue of
//! bounded length; when the queue is full the caller is told at once, so the
//! router can answer 503 with `Retry-After` instead of piling up work.
//!
//! Above the replicas sit two shared limits ([`Shares`]): each app may hold
//! only its share of the engine's instance pool, so one flooded app cannot
//! take the instances every other app needs, and the pool itself, so that a
//! full pool is a fast 503 rather than an instantiation failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    /// The queue already holds `max_queue` waiting requests.
    #[error("backlog too deep")]
    QueueFull,
    /// The request waited for a slot longer than it may run.
    #[error("timed out waiting for capacity")]
    QueueTimeout,
    /// The app already holds its share of the server's instance pool.
    #[error("the app is using its whole share of the server's instances")]
    AppShare,
    /// Every instance of the server's pool is in use (by any app).
    #[error("the server's instance pool is full")]
    PoolFull,
}

/// The shared pools a web process draws on besides its replicas' slots:
/// the app's share of the instance pool (kept across releases, so a
/// draining release counts too) and the pool itself.
#[derive(Clone)]
pub(crate) struct Shares {
    /// Instances the app may hold at once.
    pub app: Arc<Semaphore>,
    /// Instances the server may hold at once.
    pub pool: Arc<Semaphore>,
}

impl Shares {
    /// Takes one instance of the app's share and one of the pool, without
    /// waiting: a full share or pool is answered at once (503), since
    /// waiting would only tie up the connection behind someone else's
    /// slow requests.
    pub fn take(&self) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), Rejected> {
        let app = self
            .app
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejected::AppShare)?;
        let pool = self
            .pool
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejected::PoolFull)?;
        Ok((app, pool))
    }
}

/// What a running request holds until its instance is gone: a replica
/// slot, a place in its app's share and one in the pool.
pub(crate) struct Slot {
    _replica: OwnedSemaphorePermit,
    _app: OwnedSemaphorePermit,
    _pool: OwnedSemaphorePermit,
}

impl Slot {
    /// Bundles the three permits.
    pub fn new(
        replica: OwnedSemaphorePermit,
        (app, pool): (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) -> Self {
        Self {
            _replica: replica,
            _app: app,
            _pool: pool,
        }
    }
}

/// Slots and queue of one web process.
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    capacity: usize,
    waiting: AtomicUsize,
    max_queue: usize,
}

impl Admission {
    /// `capacity` concurrent requests, `max_queue` more waiting.
    pub fn new(capacity: usize, max_queue: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(capacity.max(1))),
            capacity: capacity.max(1),
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// Requests running or waiting now: what "least outstanding requests"
    /// balancing compares.
    pub(crate) fn outstanding(&self) -> usize {
        self.in_flight() + self.waiting.load(Ordering::Acquire)
    }

    /// Takes a slot, waiting at most `patience` in the queue.
    pub(crate) async fn admit(&self, patience: Duration) -> Result<OwnedSemaphorePermit, Rejected> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejected::QueueFull);
        }
        let waited = tokio::time::timeout(patience, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout anyway.
            Ok(Err(_)) | Err(_) => Err(Rejected::QueueTimeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_beyond_slots_plus_queue() {
        let admission = Arc::new(Admission::new(1, 1));
        let held = admission.admit(Duration::from_secs(1)).await.unwrap();
        assert_eq!(admission.in_flight(), 1);
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit(Duration::from_secs(5)).await.is_ok() }
        });
        // Let the second request enter the queue.
        while admission.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            admission.admit(Duration::from_secs(1)).await.unwrap_err(),
            Rejected::QueueFull
        );
        drop(held);
        assert!(queued.await.unwrap());
    }

    #[tokio::test]
    async fn queued_request_gives_up_after_patience() {
        let admission = Admission::new(1, 4);
        let _held = admission.admit(Duration::from_secs(1)).await.unwrap();
        let err = admission
            .admit(Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(err, Rejected::QueueTimeout);
    }
}
