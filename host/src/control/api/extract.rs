//! Typed request parts whose failures are [`PlatformError::Malformed`]
//! (400 with one line saying what is wrong), not axum's own plain-text
//! rejections: every answer of the API is an `ErrorBody` or a success.

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::control::error::PlatformError;

/// The largest JSON body the API reads.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// A JSON request body read as `T`. Any content type is taken (clients
/// send none or `application/json`), and an empty body reads as `{}`, so
/// that requests whose fields are all optional may send nothing.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = PlatformError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Limited::new(req.into_body(), MAX_JSON_BODY)
            .collect()
            .await
            .map_err(|e| PlatformError::malformed(format!("could not read body: {e}")))?
            .to_bytes();
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        serde_json::from_slice(bytes)
            .map(Body)
            .map_err(|e| PlatformError::malformed(format!("invalid JSON body: {e}")))
    }
}

/// The query string read as `T`.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = PlatformError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Params(value))
            .map_err(|rejection| PlatformError::malformed(rejection.body_text()))
    }
}

/// The path's parameters (`{app}`, `{kind}`, …) read as `T`.
pub struct Segments<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = PlatformError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Segments(value))
            .map_err(|rejection| PlatformError::malformed(rejection.body_text()))
    }
}
