//! `wpaas deploy [DIR]`: pack the source (with its path dependencies),
//! upload it, stream the build.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use reqwest::Method;
use wpaas_api::apps::CreateApp;
use wpaas_api::builds::DeployResult;

use super::target::AppArgs;
use crate::client::{read_result_stream, ApiError};
use crate::error::Hinted;
use crate::output;

/// Deploy a source directory: build it on the server and release it. With
/// --json the build's lines go to stderr and the result to stdout.
#[derive(clap::Args)]
pub struct Deploy {
    /// The source directory (default: the current directory). Cargo path
    /// dependencies outside it are uploaded with it.
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    target: AppArgs,
}

impl Deploy {
    pub fn run(self) -> Result<()> {
        let app = match (&self.target.app, &self.target.remote) {
            (None, None) => {
                let dir = std::fs::canonicalize(&self.dir)
                    .with_context(|| format!("could not read {}", self.dir.display()))?;
                AppArgs {
                    app: dir
                        .file_name()
                        .map(|n| n.to_string_lossy().to_ascii_lowercase()),
                    remote: None,
                    api: self.target.api.clone(),
                }
                .app()?
            }
            _ => self.target.app()?,
        };
        let api = self.target.api.client()?;
        // Path dependencies outside DIR (like a `path = "../../sdk"`)
        // are uploaded with it; the server builds DIR inside that tree.
        // (Its errors name the path already.)
        let upload = wpaas_builder::source::Upload::plan(&self.dir)?;
        for dep in upload.dependencies() {
            eprintln!("Including path dependency {}", dep.display());
        }
        for manifest in upload.workspace_manifests() {
            eprintln!("Including workspace manifest {}", manifest.display());
        }
        let tarball = upload
            .pack()
            .with_context(|| format!("could not pack {}", self.dir.display()))?;
        // Like Dokku: deploying to a new name creates the app.
        let created = match api.send_text(Method::POST, "/apps", &CreateApp { name: app.clone() }) {
            Ok(_) => {
                eprintln!("Creating {app}... done");
                true
            }
            Err(err) if ApiError::of(&err).is_some_and(ApiError::is_conflict) => false,
            Err(err) => return Err(err),
        };
        eprintln!("Uploading source ({} KiB)...", tarball.len() / 1024);
        let response = match api.upload(&format!("/apps/{app}/deploy"), tarball) {
            Ok(response) => response,
            Err(err) => {
                // Refused before any build (too large, too many files, not
                // a tar.gz): the app made for it goes too.
                if created {
                    let _ = api.delete_text(&format!("/apps/{app}"));
                }
                return Err(err);
            }
        };
        let json = self.target.api.json;
        let result = read_result_stream::<DeployResult>(response, |line| {
            if json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        })?;
        match result {
            Some(r @ DeployResult::Released { .. }) => {
                if json {
                    output::print_json(&r)?;
                }
                Ok(())
            }
            Some(r @ DeployResult::Failed { .. }) => {
                if json {
                    output::print_json(&r)?;
                }
                let DeployResult::Failed { error } = r else {
                    unreachable!("matched above")
                };
                Err(Hinted::new(
                    format!("deploy failed: {error}"),
                    format!("the build's output is above and in `wpaas builds:output -a {app}`; {app} keeps serving its current release"),
                )
                .into())
            }
            None => {
                bail!("the server ended the deploy without a result; see `wpaas releases -a {app}`")
            }
        }
    }
}
