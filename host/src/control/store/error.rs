//! What can go wrong in the store, told apart for callers: they map the
//! `Invalid*`/`Reserved*` ones to 422, `NoSuch*` to 404,
//! `AppExists`/`DomainTaken`/`ReleaseFinished` to 409, `Unavailable` to 503,
//! the rest to 500.
//!
//! No variant names a backend: sled's (and a later etcd's) errors become
//! [`StoreError::Db`] with their message.

use std::io;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The app name breaks [`super::validate_app_name`]'s rule.
    #[error(
        "invalid app name {0:?}: use 2-30 characters, lowercase letters, digits and dashes, starting with a letter"
    )]
    InvalidAppName(String),
    /// `create_app` of a name that exists (also: lost a creation race).
    #[error("app {0:?} already exists")]
    AppExists(String),
    /// The app does not exist (or was destroyed meanwhile).
    #[error("no such app: {0:?}")]
    NoSuchApp(String),
    /// The app has no such release version.
    #[error("app {app:?} has no release v{version}")]
    NoSuchRelease {
        /// The app.
        app: String,
        /// The version asked for.
        version: u32,
    },
    /// `finish_release` of a release that is no longer pending (finished
    /// before, or recovered as interrupted).
    #[error("release v{version} of {app:?} is already finished")]
    ReleaseFinished {
        /// The app.
        app: String,
        /// The release's version.
        version: u32,
    },
    /// No build with this id (or a malformed id) in the app.
    #[error("no such build: {0:?}")]
    NoSuchBuild(String),
    /// The domain belongs to another app (also: lost a claim race).
    #[error(
        "domain {domain:?} is already used by app {app:?}; remove it there first (wpaas domains:remove {domain} -a {app})"
    )]
    DomainTaken {
        /// The (normalized) domain.
        domain: String,
        /// The app that owns it.
        app: String,
    },
    /// The domain is one of the router's own names or an address.
    #[error(
        "domain {domain:?} cannot be added: {reason}; add a name you own, e.g. www.example.com"
    )]
    ReservedDomain {
        /// The (normalized) domain.
        domain: String,
        /// Why it cannot be a custom domain.
        reason: &'static str,
    },
    /// `remove_domain` of a domain the app does not have.
    #[error("no such domain")]
    NoSuchDomain,
    /// Not a host name.
    #[error("invalid domain {0:?}: use letters, digits, dashes and dots (e.g. www.example.com)")]
    InvalidDomain(String),
    /// A config key breaks [`super::validate_config_key`]'s rule.
    #[error(
        "invalid config key {0:?}: use letters, digits and underscores, not starting with a digit"
    )]
    InvalidConfigKey(String),
    /// The store is out of reach (a cluster's etcd is down or cut off):
    /// the message says where and what to check. Retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed (its message; the backend's error type stays
    /// inside the backend).
    #[error("database error: {0}")]
    Db(String),
    /// A file under WPAAS_HOME could not be read or written.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// A record could not be decoded, or records disagree.
    #[error("corrupt store: {0}")]
    Corrupt(String),
}
