//! `wpaas login --api URL --token T`: remember a (remote) server.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result};

use crate::client::{credentials_path, Credentials};

/// Save the API address and token for later commands.
#[derive(clap::Args)]
pub struct Login {
    /// e.g. http://127.0.0.1:7070
    #[arg(long)]
    api: String,
    /// The server's token (the `token` file in its WPAAS_HOME).
    #[arg(long)]
    token: String,
}

impl Login {
    pub fn run(self) -> Result<()> {
        let path = credentials_path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let body = serde_json::to_vec_pretty(&Credentials {
            api: self.api.clone(),
            token: self.token,
        })?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("could not write {}", path.display()))?;
        file.write_all(&body)?;
        println!("Logged in to {}", self.api);
        Ok(())
    }
}
