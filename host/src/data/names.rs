//! Bucket names and keys: what is allowed, and how they are laid out as
//! byte strings in an ordered store.

use super::{KvError, Quotas};

/// The bucket `wasi:keyvalue/store.open("")` opens: wasmtime's own
/// `-Skeyvalue` serves only that identifier, so components written for it
/// find their data here.
pub const DEFAULT_BUCKET: &str = "default";

/// Checks a bucket name: 1–63 of `a-z 0-9 - _`, not starting with `-`/`_`.
pub fn validate_bucket_name(name: &str) -> Result<(), KvError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(KvError::InvalidBucketName(name.to_string()))
    }
}

/// Checks a key against the quotas.
pub(super) fn validate_key(key: &str, quotas: &Quotas) -> Result<(), KvError> {
    if key.len() > quotas.max_key_bytes {
        return Err(KvError::InvalidKey(format!(
            "the key is {} bytes; the limit is {}",
            key.len(),
            quotas.max_key_bytes
        )));
    }
    Ok(())
}

/// `app \0 bucket \0`: where a bucket's entries start. App names and bucket
/// names contain no NUL, so no bucket's range holds another's keys.
pub(super) fn bucket_prefix(app: &str, bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(app.len() + bucket.len() + 2);
    k.extend_from_slice(app.as_bytes());
    k.push(0);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k
}

/// `app \0`: where all of an app's entries start.
pub(super) fn app_prefix(app: &str) -> Vec<u8> {
    let mut k = app.as_bytes().to_vec();
    k.push(0);
    k
}

/// The stored key of `key` in a bucket.
pub(super) fn entry_key(prefix: &[u8], key: &str) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}
