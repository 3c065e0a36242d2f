//! `ps`, `ps:scale`, `ps:restart`: the app's formation.

use anyhow::{bail, Result};
use reqwest::Method;
use serde_json::{Map, Value};

use super::target::AppArgs;
use crate::output;

/// List the app's process types, their commands and replicas.
#[derive(clap::Args)]
pub struct Ps {
    #[command(flatten)]
    target: AppArgs,
}

impl Ps {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/ps");
        output::show(&api, &path, self.target.api.json, |ps: Value| {
            print_processes(&app, &ps);
            Ok(())
        })
    }
}

/// Set replicas per process type: `ps:scale web=4 worker=2`.
#[derive(clap::Args)]
pub struct Scale {
    /// TYPE=N pairs, e.g. web=4.
    #[arg(required = true, value_name = "TYPE=N")]
    changes: Vec<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Scale {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let mut changes = Map::new();
        for change in &self.changes {
            let (kind, count) = parse_scale(change)?;
            changes.insert(kind, count.into());
        }
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/formation");
        let body = Value::Object(changes);
        output::change(
            &api,
            Method::PATCH,
            &path,
            &body,
            self.target.api.json,
            |ps: Value| {
                let now: Vec<String> = processes(&ps)
                    .filter(|p| p["type"] != "release" && p["type"] != "run")
                    .map(|p| format!("{} at {}", p["type"].as_str().unwrap_or(""), p["quantity"]))
                    .collect();
                println!("Scaling processes... done, now running {}", now.join(", "));
                Ok(())
            },
        )
    }
}

/// Restart the app's processes (all, or one type).
#[derive(clap::Args)]
pub struct Restart {
    /// A process type, e.g. web (default: every type).
    #[arg(value_name = "TYPE")]
    kind: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Restart {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let what = match &self.kind {
            Some(kind) => format!("{kind} processes"),
            None => "all processes".into(),
        };
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/ps/restart");
        let body = serde_json::json!({ "type": self.kind });
        eprint!("Restarting {what} of {app}... ");
        output::change(
            &api,
            Method::POST,
            &path,
            &body,
            self.target.api.json,
            |_: Value| Ok(()),
        )?;
        eprintln!("done");
        Ok(())
    }
}

/// Autoscale a process type (web) on requests in flight per replica.
#[derive(clap::Args)]
pub struct Autoscale {
    /// The process type (only web).
    #[arg(value_name = "TYPE")]
    kind: String,
    /// Fewest replicas; 0 lets an idle app sleep until its next request.
    #[arg(long, default_value_t = 0)]
    min: u32,
    /// Most replicas.
    #[arg(long)]
    max: u32,
    /// Requests in flight per replica to aim at.
    #[arg(long)]
    target: u32,
    /// How long load must stay low before replicas are removed.
    #[arg(long, default_value = "30s", value_parser = duration_ms)]
    cooldown: u64,
    /// With --min 0: no request for this long drops to zero.
    #[arg(long, default_value = "5m", value_parser = duration_ms)]
    idle: u64,
    #[command(flatten)]
    target_app: AppArgs,
}

fn duration_ms(text: &str) -> Result<u64, String> {
    wpaas_host::runtime::limits::parse_duration(text)
        .map(|d| d.as_millis() as u64)
        .map_err(|e| e.to_string())
}

impl Autoscale {
    pub fn run(self) -> Result<()> {
        let app = self.target_app.app()?;
        let api = self.target_app.api.client()?;
        let path = format!("/apps/{app}/autoscale/{}", self.kind);
        let body = serde_json::json!({
            "min": self.min,
            "max": self.max,
            "target": self.target,
            "cooldown_ms": self.cooldown,
            "idle_ms": self.idle,
        });
        output::change(
            &api,
            Method::PUT,
            &path,
            &body,
            self.target_app.api.json,
            |_: Value| {
                println!(
                    "Autoscaling {} on {app}: {}..{} replicas, target {} requests in flight each",
                    self.kind, self.min, self.max, self.target
                );
                Ok(())
            },
        )
    }
}

/// Stop autoscaling; the replicas running now stay as the formation.
#[derive(clap::Args)]
pub struct AutoscaleDisable {
    /// The process type (only web).
    #[arg(value_name = "TYPE")]
    kind: String,
    #[command(flatten)]
    target: AppArgs,
}

impl AutoscaleDisable {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/autoscale/{}", self.kind);
        output::delete(&api, &path, self.target.api.json, |ps: Value| {
            let now = processes(&ps)
                .find(|p| p["type"] == self.kind.as_str())
                .map_or(0, |p| p["quantity"].as_u64().unwrap_or(0));
            println!(
                "Autoscaling of {} on {app} disabled; it stays at {now}",
                self.kind
            );
            Ok(())
        })
    }
}

/// Set a process type's limits; they apply when it next starts (a new
/// release or ps:restart).
#[derive(clap::Args)]
pub struct Limits {
    /// The process type, e.g. web.
    #[arg(value_name = "TYPE")]
    kind: String,
    /// Linear memory per instance, e.g. 256M.
    #[arg(long)]
    memory: Option<String>,
    /// Request time limit (web), e.g. 10s.
    #[arg(long)]
    timeout: Option<String>,
    /// Concurrent requests per replica (web).
    #[arg(long)]
    concurrency: Option<u32>,
    #[command(flatten)]
    target: AppArgs,
}

impl Limits {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/limits/{}", self.kind);
        let body = serde_json::json!({
            "memory": self.memory,
            "timeout": self.timeout,
            "concurrency": self.concurrency,
        });
        output::change(
            &api,
            Method::PUT,
            &path,
            &body,
            self.target.api.json,
            |limits: Value| {
                println!(
                "Limits of {} on {app} set to {}; they apply from the next release or `wpaas ps:restart {}`",
                self.kind, limits[&self.kind], self.kind
            );
                Ok(())
            },
        )
    }
}

/// `web=4` → ("web", 4), with the mistake named when it is not that.
fn parse_scale(change: &str) -> Result<(String, u32)> {
    let Some((kind, count)) = change.split_once('=') else {
        bail!("{change:?} is not TYPE=N; try e.g. `wpaas ps:scale web=2`");
    };
    let Ok(count) = count.parse::<u32>() else {
        bail!("{count:?} in {change:?} is not a number of replicas; try e.g. web=2");
    };
    if kind.is_empty() {
        bail!("{change:?} names no process type; try e.g. web=2");
    }
    Ok((kind.to_string(), count))
}

fn processes(ps: &Value) -> impl Iterator<Item = &Value> {
    ps.as_array().into_iter().flatten()
}

fn print_processes(app: &str, ps: &Value) {
    if processes(ps).next().is_none() {
        println!("{app} has no processes; deploy it first (`wpaas deploy`).");
        return;
    }
    for process in processes(ps) {
        let kind = process["type"].as_str().unwrap_or("");
        let quantity = match (kind, process.get("autoscale")) {
            ("release", _) => "once per release".to_string(),
            (_, Some(spec)) => format!(
                "{}, autoscaled {}..{} at {} in flight each",
                process["quantity"], spec["min"], spec["max"], spec["target"]
            ),
            _ => process["quantity"].to_string(),
        };
        println!(
            "=== {kind} ({quantity}): {}",
            process["command"].as_str().unwrap_or("")
        );
        if let Some(recent) = process.get("recent") {
            println!("{}", recent_line(recent));
        }
        let replicas = process["replicas"].as_array().cloned().unwrap_or_default();
        for replica in &replicas {
            let mut line = format!(
                "{}: {} since {}",
                replica["name"].as_str().unwrap_or(""),
                replica["state"].as_str().unwrap_or(""),
                replica["since"].as_str().unwrap_or(""),
            );
            if kind == "web" {
                line += &format!(
                    "  in-flight {}  served {}",
                    replica["in_flight"], replica["served"]
                );
            }
            if let Some(command) = replica["command"].as_str() {
                line += &format!("  {command}");
            }
            if replica["restarts"].as_u64().unwrap_or(0) > 0 {
                line += &format!("  restarts {}", replica["restarts"]);
                if let Some(last) = replica["last_exit"].as_str() {
                    line += &format!(" (last: {last})");
                }
            }
            println!("{line}");
        }
        println!();
    }
}

/// `last 60s: 12.5 req/s  p50 1.2 ms  p99 8.0 ms  errors 0.0% (750 requests)`.
fn recent_line(recent: &Value) -> String {
    let number = |key: &str| recent[key].as_f64().unwrap_or(0.0);
    let millis = |key: &str| match recent[key].as_f64() {
        None => "-".to_string(),
        Some(ms) if ms < 1.0 => format!("{ms:.2} ms"),
        Some(ms) if ms < 100.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{ms:.0} ms"),
    };
    format!(
        "last {:.0}s: {:.1} req/s  p50 {}  p99 {}  errors {:.1}% ({} requests)",
        number("window_seconds"),
        number("requests_per_second"),
        millis("p50_ms"),
        millis("p99_ms"),
        number("error_rate") * 100.0,
        recent["requests"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_arguments() {
        assert_eq!(parse_scale("web=4").unwrap(), ("web".into(), 4));
        assert_eq!(parse_scale("worker=0").unwrap(), ("worker".into(), 0));
        for bad in ["web", "web=", "web=-1", "web=two", "=3"] {
            assert!(parse_scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recent_numbers_read_well() {
        let recent = serde_json::json!({
            "window_seconds": 59.6, "requests": 750, "errors": 3,
            "requests_per_second": 12.58, "error_rate": 0.004,
            "p50_ms": 0.734, "p99_ms": 123.4,
        });
        assert_eq!(
            recent_line(&recent),
            "last 60s: 12.6 req/s  p50 0.73 ms  p99 123 ms  errors 0.4% (750 requests)"
        );
        let idle = serde_json::json!({
            "window_seconds": 60.0, "requests": 0, "errors": 0,
            "requests_per_second": 0.0, "error_rate": 0.0, "p50_ms": null, "p99_ms": null,
        });
        assert_eq!(
            recent_line(&idle),
            "last 60s: 0.0 req/s  p50 -  p99 -  errors 0.0% (0 requests)"
        );
    }
}
