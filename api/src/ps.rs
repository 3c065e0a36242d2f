//! Processes: `ps`, scaling, autoscaling, limits and restarts.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// One process type of the serving release, as `GET /apps/APP/ps` lists it
/// (and `PATCH …/formation`, `PUT …/autoscale/web`, `POST …/ps/restart`
/// answer). One-off processes appear as a last entry of type `run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessType {
    /// `web`, `worker`, `release`, `run`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The Procfile command.
    pub command: String,
    /// Replicas asked for (with autoscaling: replicas running).
    pub quantity: u32,
    /// The replicas that exist now.
    #[serde(default)]
    pub replicas: Vec<Replica>,
    /// Autoscaling of `web`, when on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// Limits that differ from the server's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ProcessLimits>,
    /// For `web`: the last minute's traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent: Option<Recent>,
}

/// One replica (`web.1`, `worker.2`, `run.3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// `web.1`.
    pub name: String,
    /// `starting`, `up` or `crashed`.
    pub state: String,
    /// Since when it is in that state (RFC 3339).
    pub since: String,
    /// Web: requests being served now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    /// Web: requests served since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<u64>,
    /// Restarts after exits or traps.
    #[serde(default)]
    pub restarts: u32,
    /// How it last ended, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// One-off runs: the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// In a cluster: the node it runs on (`n3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// The last minute of an app's web traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    /// How much time the numbers cover (a minute once the server has run
    /// that long).
    pub window_seconds: f64,
    /// Requests answered in the window.
    pub requests: u64,
    /// Of those, answered 5xx (by the app or the router).
    pub errors: u64,
    /// `requests / window_seconds`.
    pub requests_per_second: f64,
    /// `errors / requests`, 0 without requests.
    pub error_rate: f64,
    /// Median latency, ms; none without requests.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

/// How the autoscaler sizes `web`: between `min` and `max` replicas,
/// aiming at `target` requests in flight per replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscale {
    /// Fewest replicas; 0 lets an idle app sleep.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// Requests in flight per replica to aim at.
    pub target: u32,
    /// Load must stay low this long before replicas are removed.
    pub cooldown_ms: u64,
    /// With `min` 0: no request for this long drops `web` to zero.
    pub idle_ms: u64,
}

/// `PUT /apps/APP/autoscale/web`. Answers the app's [`ProcessType`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoscaleRequest {
    /// Fewest replicas (default 0).
    #[serde(default)]
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// Requests in flight per replica to aim at.
    pub target: u32,
    /// Default 30 s.
    #[serde(default = "default_cooldown_ms")]
    pub cooldown_ms: u64,
    /// Default 5 minutes.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
}

fn default_cooldown_ms() -> u64 {
    30_000
}

fn default_idle_ms() -> u64 {
    300_000
}

/// Per-process-type limits; `None` keeps the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLimits {
    /// Linear memory per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Request (web) time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Concurrent requests per replica (web).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// `PUT /apps/APP/limits/TYPE`: each field optional, at least one given;
/// sizes and durations as users write them ([`crate::parse`]). Answers the
/// type's resulting [`ProcessLimits`] (not the other types').
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsRequest {
    /// e.g. `256M`.
    #[serde(default, deserialize_with = "text_or_number")]
    pub memory: Option<String>,
    /// e.g. `10s`.
    #[serde(default, deserialize_with = "text_or_number")]
    pub timeout: Option<String>,
    /// e.g. `32`.
    #[serde(default, deserialize_with = "text_or_number")]
    pub concurrency: Option<String>,
}

/// A limit written as `"256M"` or as a bare number.
fn text_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(
        Option::<TextOrNumber>::deserialize(de)?.map(|value| match value {
            TextOrNumber::Text(text) => text,
            TextOrNumber::Number(number) => number.to_string(),
        }),
    )
}

/// `PATCH /apps/APP/formation`: process type → replicas, e.g.
/// `{"web": 2}`. Answers the app's [`ProcessType`]s.
pub type Formation = BTreeMap<String, u32>;

/// `POST /apps/APP/ps/restart`: restart one type, one replica, or every
/// process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRequest {
    /// The type (`web`) or one replica (`web.2`); `None`: all.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `POST /apps/APP/ps/stop`: stop a replica (`web.2`; the formation starts
/// it again, fresh), every replica of a type (`web`, likewise), or a
/// one-off run (`run.3`, for good). Answers the app's [`ProcessType`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// `web`, `web.2` or `run.3`, as `ps` lists them.
    pub process: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_take_text_or_numbers() {
        let limits: LimitsRequest =
            serde_json::from_str(r#"{"memory":"256M","timeout":10,"concurrency":4}"#).unwrap();
        assert_eq!(limits.memory.as_deref(), Some("256M"));
        assert_eq!(limits.timeout.as_deref(), Some("10"));
        assert_eq!(limits.concurrency.as_deref(), Some("4"));
        let none: LimitsRequest = serde_json::from_str(r#"{"memory":null}"#).unwrap();
        assert_eq!(none, LimitsRequest::default());
        assert!(serde_json::from_str::<LimitsRequest>(r#"{"memory":[1]}"#).is_err());
    }

    #[test]
    fn a_web_replica_and_a_worker_read_back() {
        let ps: Vec<ProcessType> = serde_json::from_str(
            r#"[{"type":"web","command":"app.wasm","quantity":1,
                 "replicas":[{"name":"web.1","state":"up","since":"t","in_flight":0,"served":3,"restarts":0}]},
                {"type":"worker","command":"w.wasm","quantity":1,
                 "replicas":[{"name":"worker.1","state":"crashed","since":"t","restarts":2,"last_exit":"exit 1"}]}]"#,
        )
        .unwrap();
        assert_eq!(ps[0].replicas[0].served, Some(3));
        assert_eq!(ps[1].replicas[0].last_exit.as_deref(), Some("exit 1"));
        assert_eq!(ps[1].kind, "worker");
    }
}

/// `GET /apps/APP/metrics`: the last hour of an app's web traffic, one
/// point per slot (oldest first), for the dashboard's plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Seconds each point covers.
    pub slot_seconds: u64,
    /// The points, oldest first; the last is the slot in progress.
    pub points: Vec<Point>,
}

/// One slot of [`Series`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When the slot starts, in seconds since the Unix epoch.
    pub t: u64,
    /// Requests answered in it.
    pub requests: u64,
    /// Of those, by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub by_class: [u64; 5],
    /// Median latency, if there were requests.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, if there were requests.
    pub p99_ms: Option<f64>,
    /// The most web replicas seen running in it.
    pub replicas: u32,
}

/// `GET /metrics/apps`: every app's web traffic now, for the dashboard's
/// apps list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppTraffic {
    /// The app.
    pub app: String,
    /// Requests answered in the last minute.
    pub requests_per_minute: u64,
    /// Of those, the share answered 5xx.
    pub error_rate: f64,
    /// Web replicas running (the cluster's, in a cluster).
    pub web_replicas: u32,
}
