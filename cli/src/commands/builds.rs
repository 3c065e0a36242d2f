//! `builds`, `builds:output`: past builds and their logs.

use anyhow::Result;
use wpaas_api::builds::{Build, BuildOutput};

use super::target::AppArgs;
use crate::output;

/// List the app's builds, newest first.
#[derive(clap::Args)]
pub struct Builds {
    #[command(flatten)]
    target: AppArgs,
}

impl Builds {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/builds");
        output::show(
            &api,
            &path,
            self.target.api.json,
            |mut builds: Vec<Build>| {
                println!("=== {app} Builds");
                builds.sort_by_key(|b| {
                    std::cmp::Reverse(b.id.trim_start_matches('b').parse::<u64>().ok())
                });
                let rows: Vec<[String; 4]> = builds
                    .into_iter()
                    .map(|b| {
                        [
                            b.id,
                            b.status.as_str().to_string(),
                            b.release.map_or_else(String::new, |v| format!("v{v}")),
                            b.started_at,
                        ]
                    })
                    .collect();
                output::columns(&rows);
                Ok(())
            },
        )
    }
}

/// Show a build's output (default: the latest build).
#[derive(clap::Args)]
pub struct Output {
    /// A build id from `wpaas builds`, e.g. b3.
    build: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Output {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let id = self.build.as_deref().unwrap_or("latest");
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/builds/{id}/output");
        output::show(&api, &path, self.target.api.json, |build: BuildOutput| {
            print!("{}", build.output);
            Ok(())
        })
    }
}
