//! `healthcheck:set PATH [--timeout 10s]`: what a new release must answer
//! before it receives traffic.

use std::time::Duration;

use anyhow::Result;
use reqwest::Method;
use wpaas_api::apps::{Healthcheck, HealthcheckUpdate};
use wpaas_api::parse::parse_duration;

use super::target::AppArgs;
use crate::output;

/// Set the health check path (and timeout) new releases must pass.
#[derive(clap::Args)]
pub struct Set {
    /// The path requested with GET; any status below 500 passes.
    path: String,
    /// How long the check may take (e.g. 10s, 500ms).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    target: AppArgs,
}

impl Set {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let body = HealthcheckUpdate {
            path: Some(self.path.clone()),
            timeout_ms: self.timeout.map(|t| t.as_millis() as u64),
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
                println!(
                    "Health check for {app}: GET {} within {} ms",
                    check.path, check.timeout_ms
                );
                Ok(())
            },
        )
    }
}
