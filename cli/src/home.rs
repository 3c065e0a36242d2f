//! Where the CLI keeps its state on this machine: WPAAS_HOME.

use std::path::PathBuf;

use anyhow::Result;
use wpaas_host::home::Home;

use crate::error::Hinted;

/// `$WPAAS_HOME`, else `~/.wpaas`.
pub fn wpaas_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("WPAAS_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            Hinted::new(
                "neither WPAAS_HOME nor HOME is set",
                "set WPAAS_HOME to the directory wpaas should keep its state in",
            )
        })?;
    Ok(PathBuf::from(home).join(".wpaas"))
}

/// WPAAS_HOME with its layout, which the host names in one place.
pub fn home() -> Result<Home> {
    Ok(Home::new(wpaas_home()?))
}

/// Saved by `wpaas login`: `WPAAS_HOME/credentials.json`.
pub fn credentials_path() -> Result<PathBuf> {
    Ok(home()?.credentials())
}

/// The local server's API token: `WPAAS_HOME/token`.
pub fn token_path() -> Result<PathBuf> {
    Ok(home()?.token())
}
