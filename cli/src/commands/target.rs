//! Options every app command shares: which API, which app, output format.

use std::sync::OnceLock;

use anyhow::Result;

use crate::client::{Api, ApiError};
use crate::error::Hinted;
use crate::git_remote::{self, DEFAULT_REMOTE};

/// `-a/--app`, `-r/--remote`, `--api`, `--json`.
#[derive(clap::Args, Clone)]
pub struct AppArgs {
    /// The app (default: WPAAS_APP, the app of the git remote `wpaas`,
    /// else the current directory's name).
    #[arg(short = 'a', long = "app", env = "WPAAS_APP", hide_env = true)]
    pub app: Option<String>,
    /// Take the app from this git remote of the current repository (as
    /// Heroku's -r; the default remote is `wpaas`).
    #[arg(short = 'r', long = "remote", conflicts_with = "app")]
    pub remote: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `--api URL`.
#[derive(clap::Args, Clone)]
pub struct ApiArgs {
    /// API address (default: WPAAS_API, the saved login, or http://127.0.0.1:7070).
    #[arg(long = "api", global = true)]
    pub api: Option<String>,
    /// For an https API: trust only the CA certificates in FILE (PEM)
    /// (default: WPAAS_CA, the saved login's, else the system's).
    #[arg(long = "ca", global = true, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Print the API's JSON answer instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ApiArgs {
    pub fn client(&self) -> Result<Api> {
        Api::from_env(self.api.clone(), self.ca.clone())
    }
}

/// The app name this command guessed from the current directory's name,
/// if it did: a "no such app" answer then says where the name came from.
static GUESSED_FROM_DIRECTORY: OnceLock<String> = OnceLock::new();

impl AppArgs {
    /// `-a` (or WPAAS_APP), else `-r REMOTE`'s app, else the app of the git
    /// remote `wpaas` (as Heroku does), else the directory name (as
    /// Dokku/Deis do).
    pub fn app(&self) -> Result<String> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
        }
        if let Some(remote) = &self.remote {
            return match git_remote::remote_url(remote) {
                None => Err(Hinted::new(
                    format!("this directory has no git remote {remote:?}"),
                    "`git remote -v` lists the remotes; `wpaas git:remote -a APP -r NAME` adds one",
                )
                .into()),
                Some(url) => git_remote::app_of_remote(remote).ok_or_else(|| {
                    Hinted::new(
                        format!("git remote {remote} ({url}) is not a wpaas app's repository"),
                        "a wpaas remote looks like http://HOST:PORT/git/APP.git",
                    )
                    .into()
                }),
            };
        }
        if let Some(app) = git_remote::app_of_remote(DEFAULT_REMOTE) {
            return Ok(app);
        }
        let dir = std::env::current_dir()?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.is_empty() {
            anyhow::bail!("no app given: use -a APP");
        }
        let _ = GUESSED_FROM_DIRECTORY.set(name.clone());
        Ok(name)
    }
}

/// Adds a hint to a "no such app" answer for an app whose name was the
/// current directory's: the user may not know that is where it came from.
pub fn explain(err: anyhow::Error) -> anyhow::Error {
    let Some(guessed) = GUESSED_FROM_DIRECTORY.get() else {
        return err;
    };
    let not_found = ApiError::of(&err).is_some_and(ApiError::is_not_found);
    if !not_found || !err.to_string().contains(&format!("{guessed:?}")) {
        return err;
    }
    let message = crate::error::one_line(&err);
    Hinted::new(
        message,
        format!(
            "no -a APP was given and this directory has no `{DEFAULT_REMOTE}` git remote, so the app name {guessed:?} came from the directory's name; pass -a APP (`wpaas apps` lists them)"
        ),
    )
    .into()
}
