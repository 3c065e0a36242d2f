//! How records become sled keys and values.
//!
//! Values are the records as JSON. Keys sort so that a prefix scan lists
//! an app's records in order: `app\0` + big-endian version for releases,
//! `app\0` + big-endian per-app sequence number for builds. Lease keys are
//! the record's key behind a one-byte kind (`b` build, `r` release).

use serde::{de::DeserializeOwned, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::super::{App, StoreError};

/// Per-app sequence numbers, in the `counters` tree.
pub(super) use crate::control::store::transitions::Counters;

/// `app\0`: the prefix of all the app's releases and builds.
pub(super) fn prefix(app: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(app.len() + 1);
    k.extend_from_slice(app.as_bytes());
    k.push(0);
    k
}

/// Key of release `version` of `app`.
pub(super) fn release_key(app: &str, version: u32) -> Vec<u8> {
    let mut k = prefix(app);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Key of the app's `seq`th build.
pub(super) fn build_key(app: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(app);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Key of the lease entry of a record: `kind` (`b'b'`/`b'r'`) + its key.
pub(super) fn lease_key(kind: u8, record_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(record_key.len() + 1);
    k.push(kind);
    k.extend_from_slice(record_key);
    k
}

/// Lease kind of builds.
pub(super) const BUILD_LEASE: u8 = b'b';
/// Lease kind of releases.
pub(super) const RELEASE_LEASE: u8 = b'r';

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) => StoreError::Io(e),
            e => StoreError::Db(e.to_string()),
        }
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => e.into(),
        }
    }
}

/// What a transaction closure returns.
pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Ends a transaction with `e`, writing nothing.
pub(super) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Transactional get + decode.
pub(super) fn tx_get<T: DeserializeOwned>(
    tree: &TransactionalTree,
    what: &str,
    key: &[u8],
) -> TxResult<Option<T>> {
    match tree.get(key)? {
        Some(v) => match decode(what, &v) {
            Ok(t) => Ok(Some(t)),
            Err(e) => abort(e),
        },
        None => Ok(None),
    }
}

/// Transactional encode + insert.
pub(super) fn tx_put<T: Serialize>(
    tree: &TransactionalTree,
    key: &[u8],
    value: &T,
) -> TxResult<()> {
    match encode(value) {
        Ok(bytes) => {
            tree.insert(key, bytes)?;
            Ok(())
        }
        Err(e) => abort(e),
    }
}

/// The app record, or `NoSuchApp`, inside a transaction.
pub(super) fn tx_app(apps: &TransactionalTree, name: &str) -> TxResult<App> {
    match tx_get(apps, "app", name.as_bytes())? {
        Some(app) => Ok(app),
        None => abort(StoreError::NoSuchApp(name.to_string())),
    }
}

/// The app's counters (zero for an app made before counters existed).
pub(super) fn tx_counters(counters: &TransactionalTree, app: &str) -> TxResult<Counters> {
    Ok(tx_get(counters, "counters", app.as_bytes())?.unwrap_or_default())
}
