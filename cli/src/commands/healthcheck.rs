//! `healthcheck` and `healthcheck:set PATH [--timeout 10s] | --off`: what a
//! new release must answer before it receives traffic, or nothing at all.

use std::time::Duration;

use anyhow::Result;
use reqwest::Method;
use wpaas_api::apps::{Healthcheck, HealthcheckUpdate};
use wpaas_api::parse::parse_duration;

use super::target::AppArgs;
use crate::output;

/// Show the health check new releases must pass.
#[derive(clap::Args)]
pub struct Show {
    #[command(flatten)]
    target: AppArgs,
}

impl Show {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/healthcheck");
        output::show(&api, &path, self.target.api.json, |check: Healthcheck| {
            print(&app, &check);
            Ok(())
        })
    }
}

/// Set the health check path (and timeout) new releases must pass, or turn
/// the check off with --off (a new release then takes traffic as soon as
/// its code loads; setting a path turns it back on).
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["path", "off"]))]
pub struct Set {
    /// The path requested with GET; any status below 500 passes.
    path: Option<String>,
    /// How long the check may take (e.g. 10s, 500ms).
    #[arg(long, value_parser = parse_duration, conflicts_with = "off")]
    timeout: Option<Duration>,
    /// Check nothing: release without the GET (Dokku's `checks:disable`).
    #[arg(long)]
    off: bool,
    #[command(flatten)]
    target: AppArgs,
}

impl Set {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let body = if self.off {
            HealthcheckUpdate {
                enabled: Some(false),
                ..HealthcheckUpdate::default()
            }
        } else {
            HealthcheckUpdate {
                enabled: Some(true),
                path: self.path.clone(),
                // A path set without --timeout gets the documented default,
                // not whatever an earlier --timeout left.
                timeout_ms: Some(
                    self.timeout
                        .map_or(Healthcheck::DEFAULT_TIMEOUT_MS, |t| t.as_millis() as u64),
                ),
            }
        };
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/healthcheck");
        output::change(
            &api,
            Method::PATCH,
            &path,
            &body,
            self.target.api.json,
            |check: Healthcheck| {
                print(&app, &check);
                Ok(())
            },
        )
    }
}

fn print(app: &str, check: &Healthcheck) {
    if check.enabled {
        println!(
            "Health check for {app}: GET {} within {}",
            check.path,
            output::duration_ms(check.timeout_ms)
        );
    } else {
        println!("Health check for {app}: off (new releases take traffic as soon as they load)");
    }
}
