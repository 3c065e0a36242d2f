//! `ps`, `ps:scale`, `ps:restart`: the app's formation.

use anyhow::{bail, Result};
use reqwest::Method;

use serde::de::IgnoredAny;
use wpaas_api::parse::{parse_duration, parse_scale, ParseError};
use wpaas_api::ps::{
    AutoscaleRequest, Formation, LimitsRequest, ProcessLimits, ProcessType, Recent, RestartRequest,
    StopRequest,
};

use super::target::AppArgs;
use crate::client::Api;
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
        output::show(&api, &path, self.target.api.json, |ps: Vec<ProcessType>| {
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
        let mut changes = Formation::new();
        for change in &self.changes {
            let (kind, count) = parse_scale(change)?;
            changes.insert(kind, count);
        }
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/formation");
        let body = changes;
        output::change(
            &api,
            Method::PATCH,
            &path,
            &body,
            self.target.api.json,
            |ps: Vec<ProcessType>| {
                let now: Vec<String> = ps
                    .iter()
                    .filter(|p| p.kind != "release" && p.kind != "run")
                    .map(|p| format!("{} at {}", p.kind, p.quantity))
                    .collect();
                println!("Scaling processes... done, now running {}", now.join(", "));
                Ok(())
            },
        )
    }
}

/// Restart the app's processes (all, one type, or one replica: web.2).
#[derive(clap::Args)]
pub struct Restart {
    /// A process type (web) or one replica (web.2); default: every type.
    #[arg(value_name = "TYPE[.N]")]
    kind: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Restart {
    pub fn run(self) -> Result<()> {
        let what = match &self.kind {
            Some(replica) if replica.contains('.') => format!("{replica} process"),
            Some(kind) => format!("{kind} processes"),
            None => "all processes".into(),
        };
        let body = RestartRequest {
            kind: self.kind.clone(),
        };
        ps_action(
            &self.target,
            "restart",
            &format!("Restarting {what}"),
            &body,
        )
    }
}

/// POSTs `body` to `/apps/APP/ps/ACTION`, saying `DOING of APP... done`
/// on stderr (stdout stays for `--json`).
fn ps_action(
    target: &AppArgs,
    action: &str,
    doing: &str,
    body: &impl serde::Serialize,
) -> Result<()> {
    let app = target.app()?;
    let api = target.api.client()?;
    let path = format!("/apps/{app}/ps/{action}");
    let json = target.api.json;
    if !json {
        eprint!("{doing} of {app}... ");
    }
    let done = output::change(
        &api,
        Method::POST,
        &path,
        body,
        json,
        |_: IgnoredAny| Ok(()),
    );
    if !json {
        // The line begun above ends before an error is said.
        eprintln!("{}", if done.is_ok() { "done" } else { "failed" });
    }
    done
}

/// Stop a replica (web.2) or every replica of a type (web): the formation
/// starts them again, fresh (`ps:scale` runs fewer); or stop a one-off run
/// (run.3) for good.
#[derive(clap::Args)]
pub struct Stop {
    /// `web.2`, `web` or `run.3`, as `wpaas ps` lists them.
    #[arg(value_name = "PROCESS")]
    process: String,
    #[command(flatten)]
    target: AppArgs,
}

impl Stop {
    pub fn run(self) -> Result<()> {
        let body = StopRequest {
            process: self.process.clone(),
        };
        let doing = format!("Stopping {}", self.process);
        ps_action(&self.target, "stop", &doing, &body)?;
        if !self.process.starts_with("run.") {
            let kind = self.process.split('.').next().unwrap_or_default();
            eprintln!("The formation starts it again; `wpaas ps:scale {kind}=N` runs fewer.");
        }
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

fn duration_ms(text: &str) -> Result<u64, ParseError> {
    parse_duration(text).map(|d| d.as_millis() as u64)
}

impl Autoscale {
    pub fn run(self) -> Result<()> {
        let app = self.target_app.app()?;
        let api = self.target_app.api.client()?;
        let path = format!("/apps/{app}/autoscale/{}", self.kind);
        let body = AutoscaleRequest {
            min: self.min,
            max: self.max,
            target: self.target,
            cooldown_ms: self.cooldown,
            idle_ms: self.idle,
        };
        output::change(
            &api,
            Method::PUT,
            &path,
            &body,
            self.target_app.api.json,
            |_: IgnoredAny| {
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
        output::delete(&api, &path, self.target.api.json, |ps: Vec<ProcessType>| {
            let now = ps
                .iter()
                .find(|p| p.kind == self.kind)
                .map_or(0, |p| p.quantity);
            println!(
                "Autoscaling of {} on {app} disabled; it stays at {now}",
                self.kind
            );
            Ok(())
        })
    }
}

/// Show a process type's limits (every type's without TYPE), set them
/// (`--memory`, `--timeout`, `--concurrency`; the others stay), or return
/// them to the server's defaults (`--reset`). Changes apply when the type
/// next starts (a new release or ps:restart).
#[derive(clap::Args)]
pub struct Limits {
    /// The process type, e.g. web (default: show every type's).
    #[arg(value_name = "TYPE")]
    kind: Option<String>,
    /// Linear memory per instance, e.g. 256M.
    #[arg(long)]
    memory: Option<String>,
    /// Request time limit (web), e.g. 10s.
    #[arg(long)]
    timeout: Option<String>,
    /// Concurrent requests per replica (web).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Back to the server's defaults.
    #[arg(
        long,
        conflicts_with_all = ["memory", "timeout", "concurrency"],
        requires = "kind"
    )]
    reset: bool,
    #[command(flatten)]
    target: AppArgs,
}

impl Limits {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let json = self.target.api.json;
        let Some(kind) = self.kind.clone() else {
            if self.memory.is_some() || self.timeout.is_some() || self.concurrency.is_some() {
                bail!("which process type? e.g. `wpaas ps:limits web --memory 256M`");
            }
            return self.show(&api, &app, None);
        };
        let path = format!("/apps/{app}/limits/{kind}");
        let applies = format!("they apply from the next release or `wpaas ps:restart {kind}`");
        if self.reset {
            return output::delete(&api, &path, json, |_: ProcessLimits| {
                println!("Limits of {kind} on {app} reset to the server's defaults; {applies}");
                Ok(())
            });
        }
        if self.memory.is_none() && self.timeout.is_none() && self.concurrency.is_none() {
            return self.show(&api, &app, Some(&kind));
        }
        let body = LimitsRequest {
            memory: self.memory.clone(),
            timeout: self.timeout.clone(),
            concurrency: self.concurrency.map(|c| c.to_string()),
        };
        output::change(
            &api,
            Method::PUT,
            &path,
            &body,
            json,
            |limits: ProcessLimits| {
                println!(
                    "Limits of {kind} on {app} set: {}; {applies}",
                    describe_limits(&limits)
                );
                Ok(())
            },
        )
    }

    /// Every type's limits, or `kind`'s, as `ps` reports them.
    fn show(&self, api: &Api, app: &str, kind: Option<&str>) -> Result<()> {
        let ps: Vec<ProcessType> = api.get(&format!("/apps/{app}/ps"))?;
        let types: Vec<&ProcessType> = ps
            .iter()
            .filter(|p| p.kind != "run" && kind.is_none_or(|k| k == p.kind))
            .collect();
        if let (Some(kind), true) = (kind, types.is_empty()) {
            let known: Vec<&str> = ps.iter().map(|p| p.kind.as_str()).collect();
            bail!(
                "no process type {kind:?} in {app}'s current release (its types: {})",
                known.join(", ")
            );
        }
        let limits = |p: &ProcessType| p.limits.clone().unwrap_or_default();
        if self.target.api.json {
            return match kind {
                Some(_) => output::print_json(&limits(types[0])),
                None => output::print_json(
                    &types
                        .iter()
                        .map(|p| (p.kind.clone(), limits(p)))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                ),
            };
        }
        println!("=== {app} Limits");
        let rows: Vec<[String; 4]> = types
            .iter()
            .map(|p| {
                let [memory, timeout, concurrency] = limit_cells(&limits(p));
                [p.kind.clone(), memory, timeout, concurrency]
            })
            .collect();
        output::table(&["TYPE", "MEMORY", "TIMEOUT", "CONCURRENCY"], &rows);
        Ok(())
    }
}

/// `memory 256 MiB, timeout 10s, concurrency default`.
fn describe_limits(limits: &ProcessLimits) -> String {
    let [memory, timeout, concurrency] = limit_cells(limits);
    format!("memory {memory}, timeout {timeout}, concurrency {concurrency}")
}

/// Each limit as users write it, `default` where none is set.
fn limit_cells(limits: &ProcessLimits) -> [String; 3] {
    let default = || "default".to_string();
    [
        limits.memory_bytes.map_or_else(default, output::size),
        limits.timeout_ms.map_or_else(default, output::duration_ms),
        limits.concurrency.map_or_else(default, |c| c.to_string()),
    ]
}

fn print_processes(app: &str, ps: &[ProcessType]) {
    if ps.is_empty() {
        println!("{app} has no processes; deploy it first (`wpaas deploy`).");
        return;
    }
    for process in ps {
        let kind = process.kind.as_str();
        let quantity = match (kind, &process.autoscale) {
            ("release", _) => "once per release".to_string(),
            (_, Some(spec)) => format!(
                "{}, autoscaled {}..{} at {} in flight each",
                process.quantity, spec.min, spec.max, spec.target
            ),
            _ => process.quantity.to_string(),
        };
        println!("=== {kind} ({quantity}): {}", process.command);
        if let Some(recent) = &process.recent {
            println!("{}", recent_line(recent));
        }
        for replica in &process.replicas {
            let mut line = match &replica.node {
                Some(node) if replica.since.is_empty() => {
                    format!("{} ({node}): {}", replica.name, replica.state)
                }
                Some(node) => format!(
                    "{} ({node}): {} since {}",
                    replica.name, replica.state, replica.since
                ),
                None => format!(
                    "{}: {} since {}",
                    replica.name, replica.state, replica.since
                ),
            };
            if kind == "web" && replica.in_flight.is_some() {
                line += &format!(
                    "  in-flight {}  served {}",
                    replica.in_flight.unwrap_or(0),
                    replica.served.unwrap_or(0)
                );
            }
            if let Some(command) = &replica.command {
                line += &format!("  {command}");
            }
            if replica.restarts > 0 {
                line += &format!("  restarts {}", replica.restarts);
            }
            // A crashed replica waiting to restart says how it ended.
            if let Some(last) = &replica.last_exit {
                line += &format!(" (last: {last})");
            }
            println!("{line}");
        }
        println!();
    }
}

/// `last 60s: 12.5 req/s  p50 1.2 ms  p99 8.0 ms  errors 0.0% (750 requests)`.
fn recent_line(recent: &Recent) -> String {
    let millis = |ms: Option<f64>| match ms {
        None => "-".to_string(),
        Some(ms) if ms < 1.0 => format!("{ms:.2} ms"),
        Some(ms) if ms < 100.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{ms:.0} ms"),
    };
    format!(
        "last {:.0}s: {:.1} req/s  p50 {}  p99 {}  errors {:.1}% ({} requests)",
        recent.window_seconds,
        recent.requests_per_second,
        millis(recent.p50_ms),
        millis(recent.p99_ms),
        recent.error_rate * 100.0,
        recent.requests,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_numbers_read_well() {
        let recent = serde_json::json!({
            "window_seconds": 59.6, "requests": 750, "errors": 3,
            "requests_per_second": 12.58, "error_rate": 0.004,
            "p50_ms": 0.734, "p99_ms": 123.4,
        });
        let recent: Recent = serde_json::from_value(recent).unwrap();
        assert_eq!(
            recent_line(&recent),
            "last 60s: 12.6 req/s  p50 0.73 ms  p99 123 ms  errors 0.4% (750 requests)"
        );
        let idle = serde_json::json!({
            "window_seconds": 60.0, "requests": 0, "errors": 0,
            "requests_per_second": 0.0, "error_rate": 0.0, "p50_ms": null, "p99_ms": null,
        });
        let idle: Recent = serde_json::from_value(idle).unwrap();
        assert_eq!(
            recent_line(&idle),
            "last 60s: 0.0 req/s  p50 -  p99 -  errors 0.0% (0 requests)"
        );
    }
}
