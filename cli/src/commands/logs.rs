//! `wpaas logs`: an app's log stream — its processes, router, builds and
//! API changes — and, with `--tail`, every new line until Ctrl-C.

use std::io::{BufRead, BufReader, IsTerminal, Write};

use anyhow::{Context, Result};
use wpaas_api::logs::{LogLine, LogQuery};
use wpaas_api::ps::ProcessType;

use super::target::AppArgs;
use crate::client::Api;
use crate::error::Hinted;
use crate::output;

/// Which kind of lines `--source` selects.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Source {
    /// The app's own processes (web.1, worker.2, run.1).
    App,
    /// One logfmt line per request.
    Router,
    /// Build output.
    Build,
    /// Releases, config, scaling, restarts.
    Api,
    /// Autoscaling decisions.
    Scaler,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::App => "app",
            Source::Router => "router",
            Source::Build => "build",
            Source::Api => "api",
            Source::Scaler => "scaler",
        }
    }
}

/// Show an app's logs: `TIMESTAMP app[PROCESS]: MESSAGE`, oldest first.
#[derive(clap::Args)]
pub struct Logs {
    /// How many past lines to show.
    #[arg(short = 'n', long = "num", default_value_t = 100)]
    num: usize,
    /// Keep following new lines (across deploys) until Ctrl-C.
    #[arg(short = 't', long)]
    tail: bool,
    /// Only this process type or replica: `web`, `web.1`, `worker`.
    #[arg(short = 'p', long = "ps", value_name = "PROCESS")]
    ps: Option<String>,
    /// Only lines from this source.
    #[arg(short = 's', long, value_enum)]
    source: Option<Source>,
    #[command(flatten)]
    target: AppArgs,
}

impl Logs {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        if let Some(ps) = &self.ps {
            check_process(&api, &app, ps)?;
        }
        let query = LogQuery {
            n: self.num,
            tail: self.tail,
            ps: self.ps.clone(),
            source: self.source.map(|s| s.name().to_string()),
            format: Some("json".into()),
        };
        let path = format!("/apps/{app}/logs?{}", query.to_query());
        let response = api.get_streaming(&path)?;
        let stdout = std::io::stdout();
        let colour = output::colour(stdout.is_terminal());
        let mut out = stdout.lock();
        for line in BufReader::new(response).lines() {
            let line = line.context("the log stream broke off")?;
            let written = if self.target.api.json {
                writeln!(out, "{line}")
            } else {
                let Ok(entry) = serde_json::from_str::<LogLine>(&line) else {
                    continue;
                };
                writeln!(out, "{}", render(&entry, colour))
            };
            // A closed pipe (`| head`) ends us quietly.
            if written.and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// The line sources that are not process types.
const OTHER_SOURCES: [&str; 6] = ["router", "api", "build", "scaler", "release", "run"];

/// `--ps NAME` must name something that writes lines: a type of the app's
/// current release (or one of its replicas) or another source. Before the
/// first deploy there are no types to check against, so any name passes
/// (`logs --tail --ps web` may wait for it).
fn check_process(api: &Api, app: &str, name: &str) -> Result<()> {
    let types: Vec<ProcessType> = api.get(&format!("/apps/{app}/ps"))?;
    let kind = name.split_once('.').map_or(name, |(kind, _)| kind);
    if types.is_empty() || OTHER_SOURCES.contains(&kind) || types.iter().any(|t| t.kind == kind) {
        return Ok(());
    }
    let names: Vec<&str> = types
        .iter()
        .map(|t| t.kind.as_str())
        .filter(|k| !OTHER_SOURCES.contains(k))
        .collect();
    Err(Hinted::new(
        format!("{app} has no process {name:?}"),
        format!(
            "its process types are {}; other lines come from {}",
            names.join(", "),
            OTHER_SOURCES.join(", ")
        ),
    )
    .into())
}

/// `TIME app[PROCESS]: MESSAGE`, the `app[PROCESS]` part coloured by
/// source when `colour`.
fn render(entry: &LogLine, colour: bool) -> String {
    let LogLine {
        time,
        process,
        message,
        source,
    } = entry;
    let tag = format!("app[{process}]:");
    if !colour {
        return format!("{time} {tag} {message}");
    }
    let code = match source.as_str() {
        "router" => "36",
        "build" => "35",
        "api" => "33",
        "scaler" => "34",
        "logs" => "31",
        _ => "32",
    };
    format!("\x1b[2m{time}\x1b[0m \x1b[{code}m{tag}\x1b[0m {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_when_asked() {
        let line = LogLine {
            time: "t".into(),
            source: "router".into(),
            process: "router".into(),
            message: "m".into(),
        };
        assert_eq!(render(&line, false), "t app[router]: m");
        assert!(render(&line, true).contains('\x1b'));
    }
}
