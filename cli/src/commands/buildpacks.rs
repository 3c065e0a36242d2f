//! `buildpacks`, `buildpacks:set`, `buildpacks:clear`: choose a custom
//! buildpack for an app instead of detection.

use std::path::PathBuf;

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{json, Value};

use super::target::AppArgs;
use crate::output;

/// Show the app's custom buildpack, if one is set.
#[derive(clap::Args)]
pub struct Buildpacks {
    #[command(flatten)]
    target: AppArgs,
}

impl Buildpacks {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/buildpack");
        output::show(&api, &path, self.target.api.json, |body: Value| {
            match body["buildpack"].as_str() {
                Some(path) => println!("=== {app} Buildpack\n{path}"),
                None => println!("{app} has no buildpack set; it is detected on each build (wasm, rust, or .buildpacks)."),
            }
            Ok(())
        })
    }
}

/// Build the app with the custom buildpack in directory PATH (on the
/// server's machine; the Heroku classic bin/detect, bin/compile contract).
#[derive(clap::Args)]
pub struct Set {
    /// The buildpack directory.
    path: PathBuf,
    #[command(flatten)]
    target: AppArgs,
}

impl Set {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        // The server resolves paths on its own machine: send an absolute one.
        let path = std::path::absolute(&self.path)
            .with_context(|| format!("invalid path {}", self.path.display()))?;
        set(
            &self.target,
            &app,
            json!(path.display().to_string()),
            |body| {
                println!(
                    "Buildpack set. Next release on {app} will use {}.",
                    body["buildpack"].as_str().unwrap_or("")
                );
            },
        )
    }
}

/// Go back to detecting the buildpack on each build.
#[derive(clap::Args)]
pub struct Clear {
    #[command(flatten)]
    target: AppArgs,
}

impl Clear {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        set(&self.target, &app, Value::Null, |_| {
            println!("Buildpack cleared. Next release on {app} will detect its buildpack.");
        })
    }
}

fn set(target: &AppArgs, app: &str, buildpack: Value, render: impl FnOnce(Value)) -> Result<()> {
    output::change(
        &target.api.client()?,
        Method::PUT,
        &format!("/apps/{app}/buildpack"),
        &json!({ "buildpack": buildpack }),
        target.api.json,
        |body| {
            render(body);
            Ok(())
        },
    )
}
