//! Releases: `/apps/APP/releases[/vN]` and `/apps/APP/rollback`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An immutable, numbered release: a slug, config vars and process types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The app it belongs to.
    pub app: String,
    /// `vN`'s `N`; grows by one per release of the app.
    pub version: u32,
    /// The slug's digest (sha256 hex); `None` before the first deploy.
    pub slug: Option<String>,
    /// Config vars, as processes of this release see them.
    pub config: BTreeMap<String, String>,
    /// Procfile order: `[type, command]` pairs.
    pub process_types: Vec<(String, String)>,
    /// What made it: `Deploy 1a2b3c4`, `Set X config vars`, `Rollback to v3`.
    pub description: String,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
    /// Whether it went live.
    pub status: ReleaseStatus,
    /// Who made it: `cli`, `api`, `dashboard` or `git`; absent for the
    /// server's own and older releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Release {
    /// The command of a process type, if the release has it.
    pub fn command(&self, process_type: &str) -> Option<&str> {
        self.process_types
            .iter()
            .find(|(t, _)| t == process_type)
            .map(|(_, c)| c.as_str())
    }
}

/// `{"state": "succeeded"}`, `{"state": "failed", "reason": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ReleaseStatus {
    /// Being activated (release phase, health check).
    Pending,
    /// Went live (it may since have been replaced).
    Succeeded,
    /// Did not go live; the previous release kept serving.
    Failed {
        /// Why, in one line.
        reason: String,
    },
}

impl ReleaseStatus {
    /// `pending`, `succeeded`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReleaseStatus::Pending => "pending",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::Failed { .. } => "failed",
        }
    }
}

/// `GET /apps/APP/releases/vN/output`: a release and what its release
/// phase printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseOutput {
    /// The release.
    pub release: Release,
    /// The release phase's output (its heading, the command's lines, how
    /// it ended); `None` when the release ran no release command (or ran
    /// before outputs were kept).
    pub output: Option<String>,
}

/// `POST /apps/APP/rollback`: go back to `version`, or to the newest
/// succeeded release before the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The release to go back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// What `POST /apps/APP/rollback` answers (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    /// The new release, a copy of the old one.
    pub release: Release,
    /// The version it copies.
    pub rolled_back_to: u32,
}

/// Parses a release version as users write it: `v3` or `3`.
pub fn parse_version(text: &str) -> Result<u32, crate::parse::ParseError> {
    text.strip_prefix('v').unwrap_or(text).parse().map_err(|_| {
        crate::parse::ParseError(format!(
            "invalid release version `{}`; use e.g. v3",
            text.escape_debug()
        ))
    })
}
