//! Options every app command shares: which API, which app, output format.

use anyhow::Result;

use crate::client::Api;
use crate::git_remote;

/// `--api`, `-a/--app`, `--json`.
#[derive(clap::Args, Clone)]
pub struct AppArgs {
    /// The app (default: the git remote `wpaas`'s app, else the current directory's name).
    #[arg(short = 'a', long = "app")]
    pub app: Option<String>,
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

impl AppArgs {
    /// `-a`, else the app of the git remote `wpaas` (as Heroku does), else
    /// the directory name (as Dokku/Deis do).
    pub fn app(&self) -> Result<String> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
        }
        if let Some(app) = git_remote::remote_app() {
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
        Ok(name)
    }
}
