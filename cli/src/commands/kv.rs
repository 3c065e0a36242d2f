//! `kv`, `kv:create`, `kv:info`, `kv:get`, `kv:set`, `kv:delete`,
//! `kv:destroy`: an app's key-value buckets, the data its components open
//! with `wasi:keyvalue`.

use anyhow::{bail, Result};
use reqwest::Method;
use wpaas_api::kv::{Bucket, CreateBucket, Deleted, Entry, KvInfo, SetValue};

use super::target::AppArgs;
use crate::client::Api;
use crate::output;

/// `s` as one percent-encoded path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The bucket a key command means: `--bucket`, else the app's only one.
fn bucket(api: &Api, app: &str, given: Option<String>) -> Result<String> {
    if let Some(bucket) = given {
        return Ok(bucket);
    }
    let info: KvInfo = api.get(&format!("/apps/{app}/kv"))?;
    match info.buckets.as_slice() {
        [only] => Ok(only.name.clone()),
        [] => bail!(
            "{app} has no key-value bucket; attach one with `wpaas kv:create BUCKET -a {app}`"
        ),
        more => bail!(
            "{app} has {} buckets; name one with --bucket ({})",
            more.len(),
            more.iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn key_path(app: &str, bucket: &str, key: &str) -> String {
    format!("/apps/{app}/kv/{}/keys/{}", segment(bucket), segment(key))
}

/// List an app's key-value buckets.
#[derive(clap::Args)]
pub struct List {
    #[command(flatten)]
    target: AppArgs,
}

impl List {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/kv");
        output::show(&api, &path, self.target.api.json, |info: KvInfo| {
            println!("=== {app} Key-Value Buckets");
            print_buckets(&info);
            Ok(())
        })
    }
}

/// One bucket a line, in columns: `default  12 keys  340 bytes`.
fn print_buckets(info: &KvInfo) {
    let rows: Vec<[String; 3]> = info
        .buckets
        .iter()
        .map(|b| {
            [
                b.name.clone(),
                format!("{} keys", b.keys),
                format!("{} bytes", b.bytes),
            ]
        })
        .collect();
    output::columns(&rows);
}

/// Show an app's key-value usage and quotas.
#[derive(clap::Args)]
pub struct Info {
    #[command(flatten)]
    target: AppArgs,
}

impl Info {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/kv");
        output::show(&api, &path, self.target.api.json, |info: KvInfo| {
            let q = &info.quotas;
            println!("=== {app} Key-Value Data");
            println!("Buckets: {} of {}", info.buckets.len(), q.max_buckets);
            println!("Keys:    {} of {}", info.keys, q.max_keys);
            println!("Bytes:   {} of {}", info.bytes, q.max_bytes);
            println!(
                "Limits:  values up to {} bytes, keys up to {} bytes",
                q.max_value_bytes, q.max_key_bytes
            );
            print_buckets(&info);
            Ok(())
        })
    }
}

/// Attach a key-value bucket to an app (its components open it by name).
#[derive(clap::Args)]
pub struct Create {
    /// 1–63 of a-z, 0-9, '-' and '_'
    bucket: String,
    #[command(flatten)]
    target: AppArgs,
}

impl Create {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let body = CreateBucket {
            bucket: self.bucket.clone(),
        };
        let path = format!("/apps/{app}/kv");
        output::change(
            &api,
            Method::POST,
            &path,
            &body,
            self.target.api.json,
            |b: Bucket| {
                println!("Creating key-value bucket {} for {app}... done", b.name);
                Ok(())
            },
        )
    }
}

/// Delete a key-value bucket and all its data.
#[derive(clap::Args)]
pub struct Destroy {
    bucket: String,
    #[command(flatten)]
    target: AppArgs,
}

impl Destroy {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/kv/{}", segment(&self.bucket));
        output::delete(&api, &path, self.target.api.json, |d: Deleted| {
            println!("Destroying key-value bucket {} of {app}... done", d.deleted);
            Ok(())
        })
    }
}

/// Print the value of a key.
#[derive(clap::Args)]
pub struct Get {
    key: String,
    /// The bucket (default: the app's only one)
    #[arg(long, short = 'b')]
    bucket: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Get {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let bucket = bucket(&api, &app, self.bucket)?;
        let path = key_path(&app, &bucket, &self.key);
        output::show(&api, &path, self.target.api.json, |e: Entry| {
            println!("{}", e.value);
            Ok(())
        })
    }
}

/// Set a key to a value.
#[derive(clap::Args)]
pub struct Set {
    key: String,
    value: String,
    /// The bucket (default: the app's only one)
    #[arg(long, short = 'b')]
    bucket: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Set {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let bucket = bucket(&api, &app, self.bucket)?;
        let path = key_path(&app, &bucket, &self.key);
        let body = SetValue { value: self.value };
        output::change(
            &api,
            Method::PUT,
            &path,
            &body,
            self.target.api.json,
            |e: Entry| {
                println!("Setting {} in {bucket}... done ({} bytes)", e.key, e.bytes);
                Ok(())
            },
        )
    }
}

/// Delete a key.
#[derive(clap::Args)]
pub struct Delete {
    key: String,
    /// The bucket (default: the app's only one)
    #[arg(long, short = 'b')]
    bucket: Option<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Delete {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let bucket = bucket(&api, &app, self.bucket)?;
        let path = key_path(&app, &bucket, &self.key);
        output::delete(&api, &path, self.target.api.json, |d: Deleted| {
            println!("Deleting {} from {bucket}... done", d.deleted);
            Ok(())
        })
    }
}
