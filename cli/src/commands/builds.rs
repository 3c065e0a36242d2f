//! `builds`, `builds:output`: past builds and their logs.

use anyhow::Result;
use reqwest::Method;

use super::target::AppArgs;

/// List the app's builds, newest first.
#[derive(clap::Args)]
pub struct Builds {
    #[command(flatten)]
    target: AppArgs,
}

impl Builds {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let list =
            self.target
                .api
                .client()?
                .call(Method::GET, &format!("/apps/{app}/builds"), None)?;
        if self.target.api.json {
            println!("{list}");
            return Ok(());
        }
        println!("=== {app} Builds");
        let mut builds: Vec<_> = list.as_array().into_iter().flatten().collect();
        builds.sort_by_key(|b| {
            std::cmp::Reverse(
                b["id"]
                    .as_str()
                    .and_then(|id| id.trim_start_matches('b').parse::<u64>().ok()),
            )
        });
        for b in builds {
            let release = b["release"]
                .as_u64()
                .map_or_else(String::new, |v| format!("v{v}"));
            println!(
                "{:<6} {:<10} {:<5} {}",
                b["id"].as_str().unwrap_or(""),
                b["status"]["state"].as_str().unwrap_or(""),
                release,
                b["started_at"].as_str().unwrap_or(""),
            );
        }
        Ok(())
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
        let build = self.target.api.client()?.call(
            Method::GET,
            &format!("/apps/{app}/builds/{id}/output"),
            None,
        )?;
        if self.target.api.json {
            println!("{build}");
        } else {
            print!("{}", build["output"].as_str().unwrap_or(""));
        }
        Ok(())
    }
}
