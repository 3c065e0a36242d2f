//! `releases`, `releases:info`, `rollback`.

use anyhow::{bail, Result};
use reqwest::Method;
use wpaas_api::apps::AppInfo;
use wpaas_api::releases::{
    parse_version, Release, ReleaseOutput, ReleaseStatus, RollbackRequest, RolledBack,
};

use super::target::AppArgs;
use crate::client::{Api, ApiError};
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
        let mut made = None;
        let done = output::change(
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
                made = Some(answer.release.version);
                Ok(())
            },
        );
        show_release_phase_of(&api, &app, made, &done);
        done
    }
}

/// Show what a release's release phase printed (default: the newest
/// release).
#[derive(clap::Args)]
pub struct Output {
    /// e.g. v3
    version: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Output {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let version = match self.version.as_deref() {
            Some(version) => parse_version(version)?,
            None => match api
                .get::<Vec<Release>>(&format!("/apps/{app}/releases"))?
                .first()
            {
                Some(newest) => newest.version,
                None => bail!("{app} has no releases yet"),
            },
        };
        let path = format!("/apps/{app}/releases/v{version}/output");
        output::show(
            &api,
            &path,
            self.target.api.json,
            |answer: ReleaseOutput| {
                match answer.output {
                    Some(text) => print!("{text}"),
                    None if answer.release.command("release").is_some() => eprintln!(
                        "v{version} kept no release-phase output (it ran before wpaas kept it)"
                    ),
                    None => eprintln!(
                        "v{version} ran no release command (its Procfile has no release: type)"
                    ),
                }
                Ok(())
            },
        )
    }
}

/// After a change that makes a release without a stream (`config:set`,
/// `rollback`): prints the release phase's output to stderr, if it ran one
/// — of release `made`, or, when the API refused the change because the
/// release failed, of that failed release (the newest, failed for the
/// reason the API gave). Best effort: the change's outcome is what counts.
pub fn show_release_phase_of(api: &Api, app: &str, made: Option<u32>, done: &Result<()>) {
    let mut refusal = None;
    let version = match (made, done) {
        (Some(version), _) => Some(version),
        (None, Err(err)) => ApiError::of(err).and_then(|refused| {
            refusal = Some(format!(" !     {}", refused.body.error));
            let releases = api
                .get::<Vec<Release>>(&format!("/apps/{app}/releases"))
                .ok()?;
            let newest = releases.into_iter().next()?;
            match &newest.status {
                ReleaseStatus::Failed { reason } if *reason == refused.body.error => {
                    Some(newest.version)
                }
                _ => None,
            }
        }),
        (None, Ok(())) => None,
    };
    let Some(version) = version else {
        return;
    };
    let path = format!("/apps/{app}/releases/v{version}/output");
    if let Ok(ReleaseOutput {
        output: Some(text), ..
    }) = api.get::<ReleaseOutput>(&path)
    {
        for line in text.lines() {
            // The refusal is said once, by the `error:` line that follows.
            if Some(line) != refusal.as_deref() {
                eprintln!("{line}");
            }
        }
    }
}
