//! Options every app command shares: which API, which app, output format.

use anyhow::Result;

use crate::client::Api;

/// `--api`, `-a/--app`, `--json`.
#[derive(clap::Args, Clone)]
pub struct AppArgs {
    /// The app (default: the current directory's name).
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
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ApiArgs {
    pub fn client(&self) -> Result<Api> {
        Api::from_env(self.api.clone())
    }
}

impl AppArgs {
    /// `-a`, else the directory name (as Heroku falls back to the git remote
    /// and Dokku/Deis to the directory).
    pub fn app(&self) -> Result<String> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
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
