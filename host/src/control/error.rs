//! The control plane's one error type. Every platform operation fails with
//! a [`PlatformError`] whose kind says whose fault it is; the API maps the
//! kind to an HTTP status in one place (`api::error_response`, through
//! `wpaas_api::ErrorCode::status`). The message of
//! every kind but [`PlatformError::Internal`] is one line meant for the
//! user; an internal error's detail is for the server log only.

use wpaas_api::ErrorCode;
use wpaas_builder::archive::ArchiveError;
use wpaas_builder::buildpack::BuildError;

use super::store::StoreError;

/// Why a platform operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The request asks for something that cannot be: a bad name or value,
    /// a build or a release that fails.
    #[error("{0}")]
    Invalid(String),
    /// The request is not well-formed: a body that is not JSON, a missing
    /// field, a malformed parameter.
    #[error("{0}")]
    Malformed(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with the state it found (a name taken, nothing
    /// to roll back to).
    #[error("{0}")]
    Conflict(String),
    /// The server cannot do it now (shutting down, a tool missing).
    #[error("{0}")]
    Unavailable(String),
    /// The request is larger than a limit of this server.
    #[error("{0}")]
    TooLarge(String),
    /// No valid API token.
    #[error("{0}")]
    Unauthorized(String),
    /// The server failed; the client is told a request id, the log the rest.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// A platform operation's result.
pub type PlatformResult<T> = Result<T, PlatformError>;

impl PlatformError {
    /// An [`PlatformError::Invalid`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// A [`PlatformError::Malformed`] error.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::Malformed(message.into())
    }

    /// A [`PlatformError::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// A [`PlatformError::Conflict`] error.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// A [`PlatformError::Unauthorized`] error.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    /// A [`PlatformError::TooLarge`] error.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::TooLarge(message.into())
    }

    /// An [`PlatformError::Internal`] error from anything.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// The machine-readable code the client gets; it decides the HTTP
    /// status ([`ErrorCode::status`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) | Self::Malformed(_) => ErrorCode::Invalid,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// A user-facing failure (anything but internal) told as a release or
    /// build failure: the app's fault, shown to the user in full.
    pub fn user_facing(err: anyhow::Error) -> Self {
        match err.downcast::<PlatformError>() {
            Ok(err) => err,
            Err(err) => match err.downcast::<StoreError>() {
                Ok(store) => store.into(),
                Err(err) => Self::Invalid(format!("{err:#}")),
            },
        }
    }
}

impl From<StoreError> for PlatformError {
    fn from(err: StoreError) -> Self {
        use StoreError as E;
        match err {
            E::InvalidAppName(_)
            | E::InvalidConfigKey(_)
            | E::InvalidDomain(_)
            | E::ReservedDomain { .. } => Self::Invalid(err.to_string()),
            E::AppExists(_) | E::DomainTaken { .. } | E::ReleaseFinished { .. } => {
                Self::Conflict(err.to_string())
            }
            E::NoSuchApp(_) | E::NoSuchRelease { .. } | E::NoSuchBuild(_) | E::NoSuchDomain => {
                Self::NotFound(err.to_string())
            }
            E::Unavailable(_) => Self::Unavailable(err.to_string()),
            E::Db(_) | E::Io(_) | E::Corrupt(_) => Self::Internal(err.into()),
        }
    }
}

impl From<anyhow::Error> for PlatformError {
    /// Orchestration errors: a kind set below keeps it; anything else is
    /// the server's own failure.
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<PlatformError>() {
            Ok(err) => err,
            Err(err) => match err.downcast::<StoreError>() {
                Ok(store) => store.into(),
                Err(err) => Self::Internal(err),
            },
        }
    }
}

impl From<BuildError> for PlatformError {
    /// A failed build is the app's (its source, Procfile or buildpack),
    /// except where the server's own disk failed.
    fn from(err: BuildError) -> Self {
        match err {
            BuildError::Io { .. } | BuildError::SlugNotEmpty(_) => Self::Internal(err.into()),
            err => Self::user_facing(err.into()),
        }
    }
}

impl From<ArchiveError> for PlatformError {
    /// Packing or unpacking: the slug is too large, or the disk failed.
    fn from(err: ArchiveError) -> Self {
        match err {
            err @ (ArchiveError::TooLarge { .. }
            | ArchiveError::TooManyEntries { .. }
            | ArchiveError::SlugTooLarge { .. }) => Self::TooLarge(err.to_string()),
            err => Self::Internal(err.into()),
        }
    }
}

impl From<tokio::task::JoinError> for PlatformError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(anyhow::anyhow!("a blocking task failed: {err}"))
    }
}

impl From<std::io::Error> for PlatformError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_kind() {
        let err: PlatformError = StoreError::AppExists("a".into()).into();
        assert_eq!(err.code().as_str(), "conflict");
        let err: PlatformError = StoreError::NoSuchApp("a".into()).into();
        assert_eq!(err.code().as_str(), "not_found");
        let err: PlatformError = StoreError::InvalidAppName("A".into()).into();
        assert_eq!(err.code().as_str(), "invalid");
        let err: PlatformError = StoreError::Corrupt("x".into()).into();
        assert_eq!(err.code().as_str(), "internal");
    }

    #[test]
    fn user_facing_keeps_a_wrapped_kind_and_calls_the_rest_invalid() {
        let err = PlatformError::user_facing(anyhow::Error::new(PlatformError::conflict("c")));
        assert_eq!(err.code().as_str(), "conflict");
        let err = PlatformError::user_facing(anyhow::anyhow!("health check failed"));
        assert_eq!(
            (err.code().as_str(), err.to_string().as_str()),
            ("invalid", "health check failed")
        );
    }
}
