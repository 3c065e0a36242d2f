//! `releases`, `releases:info`, `rollback`.

use anyhow::Result;
use reqwest::Method;
use wpaas_api::apps::AppInfo;
use wpaas_api::releases::{parse_version, Release, ReleaseStatus, RollbackRequest, RolledBack};

use super::target::AppArgs;
use crate::output;

/// List releases, newest first.
#[derive(clap::Args)]
pub struct Releases {
    #[command(flatten)]
    target: AppArgs,
}

impl Releases {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/releases");
        output::show(&api, &path, self.target.api.json, |list: Vec<Release>| {
            println!("=== {app} Releases");
            let rows: Vec<[String; 4]> = list
                .into_iter()
                .map(|r| {
                    [
                        format!("v{}", r.version),
                        r.description,
                        r.status.as_str().to_string(),
                        r.created_at,
                    ]
                })
                .collect();
            output::columns(&rows);
            Ok(())
        })
    }
}

/// Show one release (default: the current one).
#[derive(clap::Args)]
pub struct ReleaseInfo {
    /// e.g. v3
    version: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl ReleaseInfo {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let release = match &self.version {
            Some(v) => {
                let path = format!("/apps/{app}/releases/{v}");
                return output::show(&api, &path, self.target.api.json, print_release);
            }
            None => api.get::<AppInfo>(&format!("/apps/{app}"))?.release,
        };
        match release {
            Some(release) if !self.target.api.json => print_release(release),
            release => output::print_json(&release),
        }
    }
}

fn print_release(release: Release) -> Result<()> {
    println!("=== Release v{}", release.version);
    println!("Description: {}", release.description);
    println!("Status:      {}", release.status.as_str());
    if let ReleaseStatus::Failed { reason } = &release.status {
        println!("Reason:      {reason}");
    }
    println!("Slug:        {}", release.slug.as_deref().unwrap_or("none"));
    println!("Created:     {}", release.created_at);
    for (kind, command) in &release.process_types {
        println!("Process:     {kind}: {command}");
    }
    for (key, value) in &release.config {
        println!("Config:      {key}={value}");
    }
    Ok(())
}

/// Roll back to a release (default: the previous one) by creating a new
/// release with its code and config.
#[derive(clap::Args)]
pub struct Rollback {
    /// e.g. v3
    version: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Rollback {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let body = RollbackRequest {
            version: self.version.as_deref().map(parse_version).transpose()?,
        };
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/rollback");
        let json = self.target.api.json;
        output::change(
            &api,
            Method::POST,
            &path,
            &body,
            json,
            |answer: RolledBack| {
                println!(
                    "Rolling back {app} to v{}... done, v{}",
                    answer.rolled_back_to, answer.release.version
                );
                Ok(())
            },
        )
    }
}
