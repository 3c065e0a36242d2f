//! Keeping a failing accept loop quiet and cool: a back-off that grows while
//! accept() keeps failing, and a log gate that lets one line a second
//! through and counts the rest.

use std::time::{Duration, Instant};

/// A delay that doubles from `first` up to `max` on each failure in a row.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait after this failure.
    pub(crate) fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// A success: the next failure waits `first` again.
    pub(crate) fn succeeded(&mut self) {
        self.next = self.first;
    }
}

/// Lets at most one event per `every` through; counts the others.
#[derive(Debug)]
pub(crate) struct LogGate {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogGate {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when an event at `now` may be logged, `n` being how many
    /// were held back since the last one logged; `None` to stay quiet.
    pub(crate) fn pass(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// ", and N more like it since the last line" or nothing.
pub(crate) fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} more like it since the last line)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        let delays: Vec<u128> = (0..9).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_millis(10));
    }

    #[test]
    fn gate_lets_one_event_a_second_through_and_counts_the_rest() {
        let mut gate = LogGate::new(Duration::from_secs(1));
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(gate.pass(at(0)), Some(0));
        // A storm of 100,000 failures within the second: all held back.
        for i in 0..100_000 {
            assert_eq!(gate.pass(at(i % 999)), None);
        }
        assert_eq!(gate.pass(at(1000)), Some(100_000));
        assert_eq!(gate.pass(at(1500)), None);
        assert_eq!(gate.pass(at(2000)), Some(1));
        assert_eq!(suppressed_note(0), "");
        assert_eq!(suppressed_note(3), " (3 more like it since the last line)");
    }
}
