//! App data: the app's key-value buckets (`wpaas kv:create BUCKET`), through
//! `wasi:keyvalue` 0.2.0-draft. Enable with the `kv` feature:
//!
//! ```toml
//! wpaas-sdk = { version = "0.1", features = ["kv"] }
//! ```
//!
//! ```no_run
//! # fn main() -> Result<(), wpaas_sdk::kv::Error> {
//! use wpaas_sdk::kv::Bucket;
//!
//! let bucket = Bucket::open("counter")?;
//! let visits = bucket.increment("visits", 1)?;   // atomic over every instance
//! bucket.set("last", format!("visit {visits}"))?;
//! assert_eq!(bucket.get_string("last")?.as_deref(), Some("visit 1"));
//! # Ok(()) }
//! ```
//!
//! Every write is durable when it returns. A bucket the app has not
//! attached is [`Error::NoSuchStore`].

use std::fmt;

#[allow(unsafe_code)] // wit-bindgen's generated glue
mod raw {
    wit_bindgen::generate!({
        inline: r#"
            package wpaas:sdk-kv;

            world kv {
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import wasi:keyvalue/batch@0.2.0-draft;
            }

            package wasi:keyvalue@0.2.0-draft {
                interface store {
                    variant error {
                        no-such-store,
                        access-denied,
                        other(string)
                    }

                    record key-response {
                        keys: list<string>,
                        cursor: option<u64>
                    }

                    open: func(identifier: string) -> result<bucket, error>;

                    resource bucket {
                        get: func(key: string) -> result<option<list<u8>>, error>;
                        set: func(key: string, value: list<u8>) -> result<_, error>;
                        delete: func(key: string) -> result<_, error>;
                        exists: func(key: string) -> result<bool, error>;
                        list-keys: func(cursor: option<u64>) -> result<key-response, error>;
                    }
                }

                interface atomics {
                    use store.{bucket, error};

                    increment: func(bucket: borrow<bucket>, key: string, delta: u64) -> result<u64, error>;
                }

                interface batch {
                    use store.{bucket, error};

                    get-many: func(bucket: borrow<bucket>, keys: list<string>) -> result<list<option<tuple<string, list<u8>>>>, error>;
                    set-many: func(bucket: borrow<bucket>, key-values: list<tuple<string, list<u8>>>) -> result<_, error>;
                    delete-many: func(bucket: borrow<bucket>, keys: list<string>) -> result<_, error>;
                }
            }
        "#,
        world: "wpaas:sdk-kv/kv",
        generate_all,
    });
}

use raw::wasi::keyvalue::{atomics, batch, store};

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The app has no bucket of that name (`wpaas kv:create` attaches one).
    NoSuchStore,
    /// The platform refused access.
    AccessDenied,
    /// Anything else, with the platform's reason (`quota exceeded: …`,
    /// `invalid key: …`, `the value of "k" is not a number`).
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchStore => f.write_str("no such key-value bucket"),
            Error::AccessDenied => f.write_str("access to the key-value bucket denied"),
            Error::Other(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NoSuchStore => Error::NoSuchStore,
            store::Error::AccessDenied => Error::AccessDenied,
            store::Error::Other(reason) => Error::Other(reason),
        }
    }
}

/// An open bucket of the app.
pub struct Bucket {
    inner: store::Bucket,
}

impl Bucket {
    /// Opens the app's bucket `name`.
    pub fn open(name: &str) -> Result<Self, Error> {
        Ok(Self {
            inner: store::open(name)?,
        })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.inner.get(key)?)
    }

    /// The value of `key` as text (bad UTF-8 replaced by U+FFFD).
    pub fn get_string(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.inner.set(key, value.as_ref())?)
    }

    /// Deletes `key` (absent is fine).
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        Ok(self.inner.delete(key)?)
    }

    /// Whether `key` has a value.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.inner.exists(key)?)
    }

    /// Every key, in byte order.
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.inner.list_keys(cursor)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Adds `delta` to the decimal number at `key` (absent: 0), atomically
    /// over every instance of the app; the new value.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        Ok(atomics::increment(&self.inner, key, delta)?)
    }

    /// The values of `keys`, in order.
    pub fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        Ok(batch::get_many(&self.inner, &owned)?
            .into_iter()
            .map(|entry| entry.map(|(_, v)| v))
            .collect())
    }

    /// Sets every entry, all or none.
    pub fn set_many(&self, entries: &[(&str, &[u8])]) -> Result<(), Error> {
        let owned: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        Ok(batch::set_many(&self.inner, &owned)?)
    }

    /// Deletes every key in `keys`.
    pub fn delete_many(&self, keys: &[&str]) -> Result<(), Error> {
        let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        Ok(batch::delete_many(&self.inner, &owned)?)
    }
}

#[cfg(feature = "json")]
impl Bucket {
    /// The value of `key` read as JSON; `Err(Other)` when it is not.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| Error::Other(format!("the value of {key:?} is not that JSON: {e}"))),
        }
    }

    /// Stores `value` as JSON at `key`.
    pub fn set_json<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Other(e.to_string()))?;
        self.set(key, bytes)
    }
}
