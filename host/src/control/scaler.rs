//! The autoscaler: every tick it samples each autoscaled app's requests in
//! flight, and sizes `web` between its bounds so that each replica carries
//! about `target` of them. It grows at once when the load of the last
//! second exceeds the target, shrinks only after the load has stayed low for
//! the cool-down, and drops to zero (with `min` 0) once no request has
//! arrived for the idle time; the next request then wakes one replica
//! (see `WebProcess`). Every decision is logged as `app[scaler]`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::platform::Platform;
use super::store::Autoscale;

/// The load averaged for a decision: the samples of this long.
const WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
struct AppState {
    samples: VecDeque<usize>,
    low_since: Option<Instant>,
    wakes_seen: u64,
}

/// How many samples make one second at `tick`, and the ticker (a late
/// tick is skipped, not made up).
fn ticking(tick: Duration) -> (usize, tokio::time::Interval) {
    let tick = tick.max(Duration::from_millis(1));
    let window = (WINDOW.as_nanos() / tick.as_nanos()).clamp(1, 10_000) as usize;
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    (window, ticker)
}

impl AppState {
    /// Adds a sample of requests in flight; the average of the last
    /// `window` samples.
    fn sample(&mut self, in_flight: usize, window: usize) -> f64 {
        self.samples.push_back(in_flight);
        if self.samples.len() > window {
            self.samples.pop_front();
        }
        self.samples.iter().sum::<usize>() as f64 / self.samples.len() as f64
    }
}

/// What to do with one app this tick.
#[derive(Debug, PartialEq)]
pub struct Decision {
    /// Replicas to run.
    pub to: usize,
    /// Why, for the log.
    pub reason: String,
}

/// Runs until the task is dropped, looking every `tick`.
pub async fn run(platform: Arc<Platform>, tick: Duration) {
    let (window, mut ticker) = ticking(tick);
    let mut states: HashMap<String, AppState> = HashMap::new();
    loop {
        ticker.tick().await;
        let apps = platform.autoscaled();
        states.retain(|name, _| apps.iter().any(|(app, ..)| app == name));
        for (app, spec, web) in apps {
            let state = states.entry(app.clone()).or_default();
            let wakes = web.wakes();
            if wakes > state.wakes_seen {
                platform.logs().push(
                    &app,
                    "scaler",
                    "Scaled web from 0 to 1 (a request arrived while idle)",
                );
                state.wakes_seen = wakes;
            }
            let current = web.replica_count();
            let in_flight = web.in_flight();
            let average = state.sample(in_flight, window);
            if let Some(decision) = decide(
                &spec,
                current,
                average,
                in_flight,
                web.idle_for(),
                &mut state.low_since,
                Instant::now(),
            ) {
                platform.logs().push(
                    &app,
                    "scaler",
                    &format!(
                        "Scaled web from {current} to {} ({})",
                        decision.to, decision.reason
                    ),
                );
                web.set_replicas(decision.to);
                state.samples.clear();
            }
        }
    }
}

/// In a cluster, on every node, until the task is dropped: every `tick`
/// the node reports its autoscaled apps' requests in flight (etcd, on its
/// lease), and the leader — once per cluster — sizes each app's `web` by
/// the sum over the nodes, with the rule of [`decide`], by setting the
/// number of replicas to place. A cluster keeps at least one replica of
/// an autoscaled `web` (a `min` of 0 counts as 1): waking from zero is a
/// single server's.
pub async fn run_cluster(platform: Arc<Platform>, tick: Duration) {
    let (window, mut ticker) = ticking(tick);
    let mut states: HashMap<String, AppState> = HashMap::new();
    loop {
        ticker.tick().await;
        let here: HashMap<String, AppLoad> = platform
            .autoscaled()
            .into_iter()
            .map(|(app, _, web)| {
                let load = AppLoad {
                    in_flight: web.in_flight(),
                    idle_ms: web.idle_for().as_millis() as u64,
                };
                (app, load)
            })
            .collect();
        let loads = match platform.report_load(here).await {
            Ok(Some(loads)) => loads,
            Ok(None) => {
                states.clear(); // not the leader
                continue;
            }
            Err(err) => {
                tracing::warn!("could not share the load: {err:#}");
                continue;
            }
        };
        let specs = platform.autoscale_specs();
        states.retain(|name, _| specs.contains_key(name));
        for (app, spec) in specs {
            let Some(placed) = platform.placed(&app, "web") else {
                continue;
            };
            let current = placed.len();
            if current == 0 {
                continue; // not deployed, or not placed yet
            }
            let of_app = loads.iter().filter_map(|node| node.get(&app));
            let in_flight: usize = of_app.clone().map(|l| l.in_flight).sum();
            let idle = of_app.map(|l| l.idle_ms).min().unwrap_or(0);
            let state = states.entry(app.clone()).or_default();
            let average = state.sample(in_flight, window);
            let spec = Autoscale {
                min: spec.min.max(1),
                ..spec
            };
            let Some(decision) = decide(
                &spec,
                current,
                average,
                in_flight,
                Duration::from_millis(idle),
                &mut state.low_since,
                Instant::now(),
            ) else {
                continue;
            };
            match platform.set_autoscaled_replicas(&app, decision.to as u32) {
                Ok(()) => platform.logs().push(
                    &app,
                    "scaler",
                    &format!(
                        "Scaled web from {current} to {} across the cluster ({})",
                        decision.to, decision.reason
                    ),
                ),
                Err(err) => tracing::warn!(app, "could not scale web: {err:#}"),
            }
            state.samples.clear();
        }
    }
}

/// One node's load of one autoscaled app, as the nodes share it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AppLoad {
    /// Requests running or queued on its local replicas.
    pub in_flight: usize,
    /// Since the last request arrived there, in ms.
    pub idle_ms: u64,
}

/// The scaling rule, apart from the clock and the app, to be testable.
pub fn decide(
    spec: &Autoscale,
    current: usize,
    average: f64,
    in_flight: usize,
    idle_for: Duration,
    low_since: &mut Option<Instant>,
    now: Instant,
) -> Option<Decision> {
    let (min, max, target) = (
        spec.min as usize,
        spec.max as usize,
        spec.target.max(1) as f64,
    );
    if current < min {
        return Some(Decision {
            to: min,
            reason: format!("below the minimum {min}"),
        });
    }
    let wanted = (average / target).ceil() as usize;
    if current > 0 && average > target * current as f64 && current < max {
        *low_since = None;
        return Some(Decision {
            to: wanted.clamp(current + 1, max),
            reason: format!("concurrency {average:.1} > target {target}×{current}"),
        });
    }
    if current == 0 {
        return None;
    }
    if min == 0 && in_flight == 0 && idle_for >= Duration::from_millis(spec.idle_ms) {
        *low_since = None;
        return Some(Decision {
            to: 0,
            reason: format!(
                "idle for {}",
                humantime::format_duration(idle_round(idle_for))
            ),
        });
    }
    let floor = min.max(1);
    if wanted.max(floor) < current {
        let since = *low_since.get_or_insert(now);
        if now.duration_since(since) >= Duration::from_millis(spec.cooldown_ms) {
            *low_since = None;
            let to = wanted.max(floor);
            return Some(Decision {
                to,
                reason: format!("concurrency {average:.1} ≤ target {target}×{to}"),
            });
        }
    } else {
        *low_since = None;
    }
    None
}

fn idle_round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Autoscale {
        Autoscale {
            min: 0,
            max: 16,
            target: 8,
            cooldown_ms: 1000,
            idle_ms: 5000,
        }
    }

    #[test]
    fn grows_at_once_when_over_target() {
        let mut low = None;
        let d = decide(
            &spec(),
            2,
            35.0,
            35,
            Duration::ZERO,
            &mut low,
            Instant::now(),
        )
        .unwrap();
        assert_eq!(d.to, 5);
        assert_eq!(d.reason, "concurrency 35.0 > target 8×2");
        // Never past max.
        let d = decide(
            &spec(),
            2,
            500.0,
            500,
            Duration::ZERO,
            &mut low,
            Instant::now(),
        )
        .unwrap();
        assert_eq!(d.to, 16);
        assert_eq!(
            decide(
                &spec(),
                16,
                500.0,
                500,
                Duration::ZERO,
                &mut low,
                Instant::now()
            ),
            None
        );
    }

    #[test]
    fn shrinks_only_after_the_cooldown() {
        let mut low = None;
        let t0 = Instant::now();
        let busy = Duration::ZERO;
        assert_eq!(decide(&spec(), 4, 3.0, 3, busy, &mut low, t0), None);
        assert_eq!(
            decide(
                &spec(),
                4,
                3.0,
                3,
                busy,
                &mut low,
                t0 + Duration::from_millis(500)
            ),
            None
        );
        let d = decide(
            &spec(),
            4,
            3.0,
            3,
            busy,
            &mut low,
            t0 + Duration::from_millis(1000),
        );
        assert_eq!(d.unwrap().to, 1);
        // Load that needs all four replicas in between restarts the cool-down.
        let mut low = None;
        assert_eq!(decide(&spec(), 4, 3.0, 3, busy, &mut low, t0), None);
        assert_eq!(decide(&spec(), 4, 30.0, 30, busy, &mut low, t0), None);
        assert_eq!(
            decide(
                &spec(),
                4,
                3.0,
                3,
                busy,
                &mut low,
                t0 + Duration::from_millis(1000)
            ),
            None
        );
    }

    #[test]
    fn drops_to_zero_when_idle_and_only_with_min_zero() {
        let mut low = None;
        let now = Instant::now();
        let idle = Duration::from_secs(6);
        let d = decide(&spec(), 1, 0.0, 0, idle, &mut low, now).unwrap();
        assert_eq!((d.to, d.reason.as_str()), (0, "idle for 6s"));
        assert_eq!(
            decide(&spec(), 1, 0.0, 0, Duration::from_secs(1), &mut low, now),
            None
        );
        let min_one = Autoscale { min: 1, ..spec() };
        assert_eq!(decide(&min_one, 1, 0.0, 0, idle, &mut low, now), None);
        // At zero nothing happens until a request wakes it.
        assert_eq!(decide(&spec(), 0, 0.0, 0, idle, &mut low, now), None);
    }
}
