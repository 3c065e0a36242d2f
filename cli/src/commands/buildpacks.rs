//! `buildpacks`, `buildpacks:set`, `buildpacks:clear`: choose a custom
//! buildpack for an app instead of detection.

use std::path::PathBuf;

use anyhow::{Context, Result};
use reqwest::Method;
use wpaas_api::apps::Buildpack;

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
        output::show(&api, &path, self.target.api.json, |body: Buildpack| {
            match body.buildpack {
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
            Some(path.display().to_string()),
            |body| {
                println!(
                    "Buildpack set. Next release on {app} will use {}.",
                    body.buildpack.unwrap_or_default()
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
        set(&self.target, &app, None, |_| {
            println!("Buildpack cleared. Next release on {app} will detect its buildpack.");
        })
    }
}

fn set(
    target: &AppArgs,
    app: &str,
    buildpack: Option<String>,
    render: impl FnOnce(Buildpack),
) -> Result<()> {
    output::change(
        &target.api.client()?,
        Method::PUT,
        &format!("/apps/{app}/buildpack"),
        &Buildpack { buildpack },
        target.api.json,
        |body| {
            render(body);
            Ok(())
        },
    )
}
