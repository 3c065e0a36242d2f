//! Builds: `/apps/APP/builds`, `/apps/APP/builds/ID/output` and the
//! deploy stream.

use serde::{Deserialize, Serialize};

/// One build of an app's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// `b<n>`, unique on the server.
    pub id: String,
    /// The app built.
    pub app: String,
    /// Where it is.
    pub status: BuildStatus,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// The release it produced, if it got that far.
    pub release: Option<u32>,
    /// The digest of the slug it produced.
    pub slug: Option<String>,
    /// The git commit built (for `git push`).
    #[serde(default)]
    pub commit: Option<String>,
    /// The app's custom buildpack when it started (`None`: detected).
    #[serde(default)]
    pub buildpack: Option<String>,
}

/// `{"state": "running"}`, `{"state": "failed", "reason": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BuildStatus {
    /// Still building.
    Running,
    /// Built (and released, see [`Build::release`]).
    Succeeded,
    /// Did not build, or its release failed.
    Failed {
        /// Why, in one line.
        reason: String,
    },
}

impl BuildStatus {
    /// `running`, `succeeded`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed { .. } => "failed",
        }
    }
}

/// `GET /apps/APP/builds/ID/output` (ID may be `latest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildOutput {
    /// The build.
    pub build: Build,
    /// Its log, one line per line.
    pub output: String,
}

/// `POST /apps/APP/deploy?commit=SHA`: the query. The body is the source
/// as a tar.gz; the answer streams the build's lines and ends with a
/// [`DeployResult`] (see [`crate::stream`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployQuery {
    /// The git commit the tarball holds (full lower-case hex): names the
    /// release, and a commit built before is released without a rebuild.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl DeployQuery {
    /// Checks `commit` is a full git object id (SHA-1 or SHA-256 hex).
    pub fn validate(&self) -> Result<(), crate::parse::ParseError> {
        let Some(commit) = &self.commit else {
            return Ok(());
        };
        let hex = commit
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if hex && matches!(commit.len(), 40 | 64) {
            Ok(())
        } else {
            Err(crate::parse::ParseError(format!(
                "invalid commit `{}`: give the full lower-case hex object id",
                commit.escape_debug()
            )))
        }
    }
}

/// The last line of a deploy stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeployResult {
    /// The new release is live.
    Released {
        /// Its version.
        release: u32,
        /// Where the app answers.
        url: String,
    },
    /// The build or the release failed; the previous release serves on.
    Failed {
        /// Why, in one line (also the stream's last ` !` line).
        error: String,
    },
}
