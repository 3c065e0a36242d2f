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
        if std::fs::read_dir(&self.dir)
            .with_context(|| format!("could not read {}", self.dir.display()))?
            .next()
            .is_none()
        {
            let dir = match self.dir.to_str() {
                Some(".") => "the current directory".to_string(),
                _ => self.dir.display().to_string(),
            };
            return Err(Hinted::new(
                format!("{dir} is empty: nothing to deploy"),
                "deploy the directory of an app (its source, or a .wasm with a Procfile)",
            )
            .into());
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
        let mut held = HeldLine::default();
        let json = self.target.api.json;
        let result = read_result_stream::<DeployResult>(response, |line| {
            held.show_before(line, json);
        });
        let result = match result {
            Ok(result) => result,
            Err(err) => {
                held.flush(json);
                return Err(err);
            }
        };
        match result {
            Some(r @ DeployResult::Released { .. }) => {
                held.flush(json);
                if json {
                    output::print_json(&r)?;
                }
                Ok(())
            }
            Some(r @ DeployResult::Failed { .. }) => {
                let DeployResult::Failed { error } = &r else {
                    unreachable!("matched above")
                };
                // The stream's last line says the error the `error:` line
                // below says: once is enough.
                held.drop_if(&format!(" !     {error}"), json);
                if json {
                    output::print_json(&r)?;
                }
                let hint = if created {
                    // A deploy that failed leaves no app behind it made.
                    let _ = api.delete_text(&format!("/apps/{app}"));
                    format!("{app} was created for this deploy and is removed again; fix the source and deploy again")
                } else {
                    format!("the build's output is above and in `wpaas builds:output -a {app}`; {app} keeps serving its current release")
                };
                Err(Hinted::new(format!("deploy failed: {error}"), hint).into())
            }
            None => {
                held.flush(json);
                bail!("the server ended the deploy without a result; see `wpaas releases -a {app}`")
            }
        }
    }
}

/// The deploy stream's lines as they come, but for a failure line
/// (` !     …`), held until the next line: the last one may be the failure
/// the final `error:` line says, and is then not printed. Only those are
/// held, so a line a long wait follows (`Waiting for a build slot`) shows
/// while it waits.
#[derive(Default)]
struct HeldLine(Option<String>);

impl HeldLine {
    /// Prints the line held so far, then prints or holds `line`.
    fn show_before(&mut self, line: &str, json: bool) {
        self.flush(json);
        self.0 = Some(line.to_string());
        if !line.starts_with(" !") {
            self.flush(json);
        }
    }

    /// Prints the held line, unless it is `said`.
    fn drop_if(&mut self, said: &str, json: bool) {
        if self.0.as_deref() == Some(said) {
            self.0 = None;
        }
        self.flush(json);
    }

    /// Prints the held line (to stderr with --json, where stdout is the
    /// result).
    fn flush(&mut self, json: bool) {
        if let Some(line) = self.0.take() {
            if json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
}
