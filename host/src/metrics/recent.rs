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

/// The last minute, for `ps`: 12 slots of 5 s.
pub(crate) const MINUTE: Shape = Shape {
    slot_secs: 5,
    slots: 12,
};
/// The last hour, for the dashboard's plots: 60 slots of a minute.
pub(crate) const HOUR: Shape = Shape {
    slot_secs: 60,
    slots: 60,
};

/// How a window is cut into slots.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Seconds per slot.
    pub slot_secs: u64,
    /// Slots in the ring.
    pub slots: u64,
}
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
    /// By status class: 1xx … 5xx.
    classes: [AtomicU32; 5],
    /// The most replicas seen running in the period.
    replicas: AtomicU32,
    latency: [AtomicU32; BUCKETS],
}

impl Slot {
    fn new() -> Self {
        Self {
            period: AtomicU64::new(0),
            requests: AtomicU32::new(0),
            errors: AtomicU32::new(0),
            classes: Default::default(),
            replicas: AtomicU32::new(0),
            latency: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Zeroes the counts (the slot starts a new period).
    fn clear(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.replicas.store(0, Ordering::Relaxed);
        for count in self.classes.iter().chain(&self.latency) {
            count.store(0, Ordering::Relaxed);
        }
    }
}

/// A recent window of one app's web requests (the last minute, or the
/// last hour, see [`Shape`]).
pub(crate) struct Recent {
    shape: Shape,
    slots: Box<[Slot]>,
}

impl Default for Recent {
    fn default() -> Self {
        Self::new()
    }
}

/// One slot's numbers, as [`Recent::series`] reports them.
pub(crate) use wpaas_api::ps::Point;

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
    /// No requests yet: the last minute.
    pub(crate) fn new() -> Self {
        Self::with(MINUTE)
    }

    /// No requests yet, over a window of `shape`.
    pub(crate) fn with(shape: Shape) -> Self {
        Self {
            shape,
            slots: (0..shape.slots).map(|_| Slot::new()).collect(),
        }
    }

    fn period(&self, now: Duration) -> u64 {
        now.as_secs() / self.shape.slot_secs + 1
    }

    /// The slot of `now`'s period, claimed (and zeroed) for it if it held
    /// an older one; `None` if the ring has moved past it.
    fn slot(&self, now: Duration) -> Option<&Slot> {
        let period = self.period(now);
        let slot = &self.slots[(period % self.shape.slots) as usize];
        let seen = slot.period.load(Ordering::Acquire);
        if seen != period {
            if seen > period {
                // A request that finished as the ring moved past its period.
                return None;
            }
            if slot
                .period
                .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.clear();
            }
        }
        Some(slot)
    }

    /// Records one answered request with its status, `now` being the
    /// time since a fixed origin (the same for every call).
    pub(crate) fn record(&self, now: Duration, latency: Duration, status: u16) {
        let Some(slot) = self.slot(now) else {
            return;
        };
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        let class = (status / 100).clamp(1, 5) as usize - 1;
        slot.classes[class].fetch_add(1, Ordering::Relaxed);
        slot.latency[bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
    }

    /// Notes that `replicas` ran at `now`.
    pub(crate) fn note_replicas(&self, now: Duration, replicas: u32) {
        if let Some(slot) = self.slot(now) {
            slot.replicas.fetch_max(replicas, Ordering::Relaxed);
        }
    }

    /// One point per slot of the whole window up to `now`, oldest first
    /// (empty slots, and those before the origin, as zeros); `t` is the
    /// slot's start, `origin` seconds being the Unix time of `now`'s
    /// origin.
    pub(crate) fn series(&self, now: Duration, origin: u64) -> Vec<Point> {
        let period = self.period(now) as i64;
        let (slots, slot_secs) = (self.shape.slots as i64, self.shape.slot_secs as i64);
        (period - slots + 1..=period)
            .map(|p| {
                let t = (origin as i64 + (p - 1) * slot_secs).max(0) as u64;
                let slot = self
                    .slots
                    .iter()
                    .find(|s| p >= 1 && s.period.load(Ordering::Acquire) == p as u64);
                let Some(slot) = slot else {
                    return Point {
                        t,
                        requests: 0,
                        by_class: [0; 5],
                        p50_ms: None,
                        p99_ms: None,
                        replicas: 0,
                    };
                };
                let latency: Vec<u64> = slot
                    .latency
                    .iter()
                    .map(|c| u64::from(c.load(Ordering::Relaxed)))
                    .collect();
                Point {
                    t,
                    requests: u64::from(slot.requests.load(Ordering::Relaxed)),
                    by_class: std::array::from_fn(|i| {
                        u64::from(slot.classes[i].load(Ordering::Relaxed))
                    }),
                    p50_ms: percentile(&latency, 0.50),
                    p99_ms: percentile(&latency, 0.99),
                    replicas: slot.replicas.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// The numbers for the window up to `now` (same origin as `record`).
    pub(crate) fn summary(&self, now: Duration) -> Summary {
        let period = self.period(now);
        let oldest = period.saturating_sub(self.shape.slots - 1).max(1);
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
        let window_start = Duration::from_secs((oldest - 1) * self.shape.slot_secs);
        let window_seconds = now.saturating_sub(window_start).as_secs_f64().max(1e-3);
        let percentile = |q: f64| percentile(&latency, q);
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

/// The `q` quantile of a latency histogram, in ms: nearest rank, the
/// smallest value with at least `q` of the observations at or below it.
fn percentile(latency: &[u64], q: f64) -> Option<f64> {
    let total: u64 = latency.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    latency.iter().enumerate().find_map(|(bucket, &count)| {
        seen += count;
        (seen >= rank).then(|| bucket_value(bucket).as_secs_f64() * 1e3)
    })
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
            recent.record(now, ms(2), 200);
        }
        recent.record(now, ms(300), 500);
        recent.record(now, ms(300), 500);
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
            recent.record(Duration::ZERO, Duration::from_micros(micros), 200);
            let got = recent.summary(Duration::ZERO).p50_ms.unwrap() * 1e3;
            let error = (got - micros as f64).abs() / micros as f64;
            assert!(error < 0.095, "{micros} µs reported as {got} µs");
        }
    }

    #[test]
    fn the_window_is_the_last_minute() {
        let recent = Recent::new();
        for second in 0..120u64 {
            recent.record(
                Duration::from_secs(second),
                ms(1),
                if second < 60 { 503 } else { 200 },
            );
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
            recent.record(Duration::from_secs(2), ms(1), 200);
        }
        let s = recent.summary(Duration::from_secs(3));
        assert!((s.window_seconds - 3.0).abs() < 1e-9);
        assert!((s.requests_per_second - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_reused_slot_forgets_its_old_period() {
        let recent = Recent::new();
        recent.record(Duration::from_secs(1), ms(1), 500);
        // 60 s later the same slot comes round again.
        recent.record(Duration::from_secs(61), ms(1), 200);
        let s = recent.summary(Duration::from_secs(61));
        assert_eq!((s.requests, s.errors), (1, 0));
    }

    #[test]
    fn the_hour_series_has_a_point_a_minute_with_classes_and_replicas() {
        let hour = Recent::with(HOUR);
        hour.record(Duration::from_secs(30), ms(2), 200);
        hour.record(Duration::from_secs(30), ms(2), 404);
        hour.note_replicas(Duration::from_secs(40), 3);
        hour.record(Duration::from_secs(150), ms(5), 502);
        let series = hour.series(Duration::from_secs(170), 1_000_000);
        assert_eq!(series.len(), 60, "the whole hour, minutes 0-2 last");
        let series = &series[57..];
        assert_eq!(series[0].t, 1_000_000);
        assert_eq!(series[0].requests, 2);
        assert_eq!(series[0].by_class, [0, 1, 0, 1, 0]);
        assert_eq!(series[0].replicas, 3);
        assert_eq!((series[1].requests, series[1].p50_ms), (0, None));
        assert_eq!(series[2].t, 1_000_120);
        assert_eq!(series[2].by_class[4], 1);
        assert_eq!(
            hour.series(Duration::from_secs(170), 1_000_000)[56].t,
            1_000_000 - 60
        );
        // An hour later the first minute is out of the window.
        let later = hour.series(Duration::from_secs(3700), 1_000_000);
        assert_eq!(later.len(), 60);
        assert!(later
            .iter()
            .all(|p| p.requests == 0 || p.t >= 1_000_000 + 120));
    }
}
