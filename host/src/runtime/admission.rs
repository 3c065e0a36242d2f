//! Bounded concurrency with a bounded queue: the capacity of a web process.
//!
//! A request takes a slot for as long as its instance lives (including while
//! its response body streams). When all slots are busy it waits in a queue of
//! bounded length; when the queue is full the caller is told at once, so the
//! router can answer 503 with `Retry-After` instead of piling up work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The queue already holds `max_queue` waiting requests.
    #[error("backlog too deep")]
    QueueFull,
    /// The request waited for a slot longer than it may run.
    #[error("timed out waiting for capacity")]
    QueueTimeout,
}

/// Slots and queue of one web process.
pub struct Admission {
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
    pub fn outstanding(&self) -> usize {
        self.in_flight() + self.waiting.load(Ordering::Acquire)
    }

    /// Takes a slot, waiting at most `patience` in the queue.
    pub async fn admit(&self, patience: Duration) -> Result<OwnedSemaphorePermit, Rejected> {
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
