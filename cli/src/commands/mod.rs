//! One module per command; each is a clap struct plus `run`.

mod up;

use std::path::PathBuf;

/// The top-level commands.
#[derive(clap::Subcommand)]
pub enum Command {
    Up(up::Up),
}

impl Command {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Up(cmd) => cmd.run(),
        }
    }
}

/// Where wpaas keeps its state: `$WPAAS_HOME`, else `~/.wpaas`.
pub fn wpaas_home() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("WPAAS_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow::anyhow!("neither WPAAS_HOME nor HOME is set"))?;
    Ok(PathBuf::from(home).join(".wpaas"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
