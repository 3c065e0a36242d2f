//! `config`, `config:get`, `config:set`, `config:unset`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use reqwest::Method;
use serde_json::Value;

use super::target::AppArgs;

/// Show config vars.
#[derive(clap::Args)]
pub struct Config {
    #[command(flatten)]
    target: AppArgs,
}

impl Config {
    pub fn run(self) -> Result<()> {
        let (app, vars) = fetch(&self.target)?;
        if self.target.api.json {
            println!("{vars}");
            return Ok(());
        }
        println!("=== {app} Config Vars");
        let map = vars.as_object().cloned().unwrap_or_default();
        let width = map.keys().map(String::len).max().unwrap_or(0) + 1;
        for (key, value) in map {
            println!(
                "{:width$} {}",
                format!("{key}:"),
                value.as_str().unwrap_or("")
            );
        }
        Ok(())
    }
}

/// Print one config var's value.
#[derive(clap::Args)]
pub struct Get {
    /// The variable.
    key: String,
    #[command(flatten)]
    target: AppArgs,
}

impl Get {
    pub fn run(self) -> Result<()> {
        let (app, vars) = fetch(&self.target)?;
        match vars.get(&self.key).and_then(Value::as_str) {
            Some(value) => println!("{value}"),
            None => bail!("{} is not set on {app}", self.key),
        }
        Ok(())
    }
}

/// Set config vars (creates a release and restarts the app).
#[derive(clap::Args)]
pub struct Set {
    /// KEY=VALUE pairs.
    #[arg(required = true, value_name = "KEY=VALUE")]
    pairs: Vec<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Set {
    pub fn run(self) -> Result<()> {
        let mut changes = BTreeMap::new();
        for pair in &self.pairs {
            match pair.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    changes.insert(key.to_string(), Value::String(value.to_string()));
                }
                _ => bail!("`{pair}` is not KEY=VALUE (e.g. wpaas config:set GREETING=hello)"),
            }
        }
        apply(&self.target, changes, "Setting")
    }
}

/// Remove config vars (creates a release and restarts the app).
#[derive(clap::Args)]
pub struct Unset {
    /// Variable names.
    #[arg(required = true)]
    keys: Vec<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Unset {
    pub fn run(self) -> Result<()> {
        let changes = self.keys.iter().map(|k| (k.clone(), Value::Null)).collect();
        apply(&self.target, changes, "Unsetting")
    }
}

/// The app's name and its config vars as a JSON object.
fn fetch(target: &AppArgs) -> Result<(String, Value)> {
    let app = target.app()?;
    let vars = target
        .api
        .client()?
        .call(Method::GET, &format!("/apps/{app}/config"), None)?;
    Ok((app, vars))
}

fn apply(target: &AppArgs, changes: BTreeMap<String, Value>, verb: &str) -> Result<()> {
    let app = target.app()?;
    let keys: Vec<_> = changes.keys().cloned().collect();
    let api = target.api.client()?;
    eprint!("{verb} {} and restarting {app}... ", keys.join(", "));
    let body = Value::Object(changes.into_iter().collect());
    match api.call(Method::PATCH, &format!("/apps/{app}/config"), Some(body)) {
        Ok(release) => {
            eprintln!("done, v{}", release["version"]);
            Ok(())
        }
        Err(err) => {
            eprintln!("failed");
            Err(err)
        }
    }
}
