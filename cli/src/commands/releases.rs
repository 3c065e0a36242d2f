//! `releases`, `releases:info`, `rollback`.

use anyhow::Result;
use reqwest::Method;
use serde_json::{json, Value};

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
        output::show(&api, &path, self.target.api.json, |list: Value| {
            println!("=== {app} Releases");
            for r in list.as_array().into_iter().flatten() {
                println!(
                    "v{:<4} {:<40} {:<10} {}",
                    r["version"],
                    r["description"].as_str().unwrap_or(""),
                    r["status"]["state"].as_str().unwrap_or(""),
                    r["created_at"].as_str().unwrap_or("")
                );
            }
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
            None => api.get::<Value>(&format!("/apps/{app}"))?["release"].clone(),
        };
        if self.target.api.json || release.is_null() {
            return output::print_json(&release);
        }
        print_release(release)
    }
}

fn print_release(release: Value) -> Result<()> {
    println!("=== Release v{}", release["version"]);
    println!(
        "Description: {}",
        release["description"].as_str().unwrap_or("")
    );
    println!(
        "Status:      {}",
        release["status"]["state"].as_str().unwrap_or("")
    );
    if let Some(reason) = release["status"]["reason"].as_str() {
        println!("Reason:      {reason}");
    }
    println!(
        "Slug:        {}",
        release["slug"].as_str().unwrap_or("none")
    );
    println!(
        "Created:     {}",
        release["created_at"].as_str().unwrap_or("")
    );
    for pt in release["process_types"].as_array().into_iter().flatten() {
        println!(
            "Process:     {}: {}",
            pt[0].as_str().unwrap_or(""),
            pt[1].as_str().unwrap_or("")
        );
    }
    let config = release["config"].as_object().cloned().unwrap_or_default();
    for (key, value) in config {
        println!("Config:      {key}={}", value.as_str().unwrap_or(""));
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
        let body = match &self.version {
            Some(v) => {
                let n: u64 = v
                    .trim_start_matches('v')
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid release version `{v}`; use e.g. v3"))?;
                json!({ "version": n })
            }
            None => json!({}),
        };
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/rollback");
        output::change(
            &api,
            Method::POST,
            &path,
            &body,
            self.target.api.json,
            |answer: Value| {
                let target: &Value = &answer["rolled_back_to"];
                println!(
                    "Rolling back {app} to v{target}... done, v{}",
                    answer["release"]["version"]
                );
                Ok(())
            },
        )
    }
}
