//! Recent request numbers for `wpaas ps`: request rate, p50/p99 latency
//! and error rate over the last minute.
//!
//! Prometheus counters answer "how many since the start"; `ps` wants "how
//! is it doing now", which needs a window. The window is a ring of twelve
//! five-second slots, each with a request count, an error count and a
//! latency histogram on a log scale (buckets a quarter octave wide, so a
//! reported percentile is within ±9 % of the true one). Recording is
//! atomics only, like the other counters. A slot is claimed for a new
//! period by swapping its period tag and then zeroed; an increment racing
//! that reset can be lost, which a dashboard can afford and a request path
//! holding a lock could not.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Seconds per slot.
const SLOT_SECS: u64 = 5;
/// Slots in the ring: 12 × 5 s = the last minute.
const SLOTS: u64 = 12;
/// Latency buckets: bucket i holds [10 µs · 2^(i/4), 10 µs · 2^((i+1)/4)),
/// bucket 0 everything below, the last everything above (≈ 2.8 min).
const BUCKETS: usize = 96;
/// The smallest latency told apart, in microseconds.
const BASE_MICROS: f64 = 10.0;

struct Slot {
    /// Which period the counts are for: `seconds / SLOT_SECS + 1`; 0 = never.
    period: AtomicU64,
    requests: AtomicU32,
    errors: AtomicU32,
    latency: [AtomicU32; BUCKETS],
}

impl Slot {
    fn new() -> Self {
        Self {
            period: AtomicU64::new(0),
            requests: AtomicU32::new(0),
            errors: AtomicU32::new(0),
            latency: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

/// The last minute of one process type's requests.
pub(crate) struct Recent {
    slots: Box<[Slot]>,
}

impl Default for Recent {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Recent::summary`] reports: the API's `ps` type itself, so the
/// numbers reach the client without a copy of their shape.
pub(crate) use wpaas_api::ps::Recent as Summary;

fn bucket_of(latency: Duration) -> usize {
    let micros = latency.as_micros() as f64;
    if micros < BASE_MICROS {
        return 0;
    }
    ((4.0 * (micros / BASE_MICROS).log2()) as usize).min(BUCKETS - 1)
}

/// A bucket's representative latency: the geometric middle of its range.
fn bucket_value(bucket: usize) -> Duration {
    Duration::from_secs_f64(BASE_MICROS * 2f64.powf((bucket as f64 + 0.5) / 4.0) / 1e6)
}

impl Recent {
    /// No requests yet.
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::new()).collect(),
        }
    }

    /// Records one answered request, `now` being the time since a fixed
    /// origin (the same for every call).
    pub(crate) fn record(&self, now: Duration, latency: Duration, error: bool) {
        let period = now.as_secs() / SLOT_SECS + 1;
        let slot = &self.slots[(period % SLOTS) as usize];
        let seen = slot.period.load(Ordering::Acquire);
        if seen != period {
            if seen > period {
                // A request that finished as the ring moved past its period.
                return;
            }
            if slot
                .period
                .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.requests.store(0, Ordering::Relaxed);
                slot.errors.store(0, Ordering::Relaxed);
                for count in &slot.latency {
                    count.store(0, Ordering::Relaxed);
                }
            }
        }
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        slot.latency[bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
    }

    /// The numbers for the minute up to `now` (same origin as `record`).
    pub(crate) fn summary(&self, now: Duration) -> Summary {
        let period = now.as_secs() / SLOT_SECS + 1;
        let oldest = period.saturating_sub(SLOTS - 1).max(1);
        let mut requests = 0u64;
        let mut errors = 0u64;
        let mut latency = [0u64; BUCKETS];
        for slot in self.slots.iter() {
            let p = slot.period.load(Ordering::Acquire);
            if p < oldest || p > period {
                continue;
            }
            requests += u64::from(slot.requests.load(Ordering::Relaxed));
            errors += u64::from(slot.errors.load(Ordering::Relaxed));
            for (sum, count) in latency.iter_mut().zip(&slot.latency) {
                *sum += u64::from(count.load(Ordering::Relaxed));
            }
        }
        // From the start of the oldest period counted to now.
        let window_start = Duration::from_secs((oldest - 1) * SLOT_SECS);
        let window_seconds = now.saturating_sub(window_start).as_secs_f64().max(1e-3);
        let percentile = |q: f64| -> Option<f64> {
            let total: u64 = latency.iter().sum();
            if total == 0 {
                return None;
            }
            // Nearest rank: the smallest value with at least q of the
            // observations at or below it.
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            latency.iter().enumerate().find_map(|(bucket, &count)| {
                seen += count;
                (seen >= rank).then(|| bucket_value(bucket).as_secs_f64() * 1e3)
            })
        };
        Summary {
            window_seconds,
            requests,
            errors,
            requests_per_second: requests as f64 / window_seconds,
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_are_within_a_bucket_of_the_truth() {
        let recent = Recent::new();
        let now = Duration::from_secs(100);
        // 98 fast requests, 2 slow ones: p50 is fast, p99 is slow.
        for _ in 0..98 {
            recent.record(now, ms(2), false);
        }
        recent.record(now, ms(300), true);
        recent.record(now, ms(300), true);
        let s = recent.summary(now);
        assert_eq!((s.requests, s.errors), (100, 2));
        assert!((s.error_rate - 0.02).abs() < 1e-9);
        let p50 = s.p50_ms.unwrap();
        let p99 = s.p99_ms.unwrap();
        assert!((1.82..=2.18).contains(&p50), "p50 {p50}");
        assert!((273.0..=327.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn every_latency_lands_within_nine_percent() {
        for micros in [15u64, 120, 999, 4_321, 250_000, 7_000_000] {
            let recent = Recent::new();
            recent.record(Duration::ZERO, Duration::from_micros(micros), false);
            let got = recent.summary(Duration::ZERO).p50_ms.unwrap() * 1e3;
            let error = (got - micros as f64).abs() / micros as f64;
            assert!(error < 0.095, "{micros} µs reported as {got} µs");
        }
    }

    #[test]
    fn the_window_is_the_last_minute() {
        let recent = Recent::new();
        for second in 0..120u64 {
            recent.record(Duration::from_secs(second), ms(1), second < 60);
        }
        // At 119.5 s the window starts at 60 s: 60 requests, none of the
        // first minute's errors.
        let s = recent.summary(Duration::from_millis(119_500));
        assert_eq!((s.requests, s.errors), (60, 0));
        assert!((s.window_seconds - 59.5).abs() < 1e-9);
        assert!((s.requests_per_second - 60.0 / 59.5).abs() < 1e-9);
        // Long after, nothing is recent.
        let later = recent.summary(Duration::from_secs(1000));
        assert_eq!(later.requests, 0);
        assert_eq!(later.p50_ms, None);
        assert_eq!(later.requests_per_second, 0.0);
    }

    #[test]
    fn a_young_window_divides_by_the_time_it_covers() {
        let recent = Recent::new();
        for _ in 0..30 {
            recent.record(Duration::from_secs(2), ms(1), false);
        }
        let s = recent.summary(Duration::from_secs(3));
        assert!((s.window_seconds - 3.0).abs() < 1e-9);
        assert!((s.requests_per_second - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_reused_slot_forgets_its_old_period() {
        let recent = Recent::new();
        recent.record(Duration::from_secs(1), ms(1), true);
        // 60 s later the same slot comes round again.
        recent.record(Duration::from_secs(61), ms(1), false);
        let s = recent.summary(Duration::from_secs(61));
        assert_eq!((s.requests, s.errors), (1, 0));
    }
}
