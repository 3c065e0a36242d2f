//! `config`, `config:get`, `config:set`, `config:unset`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use reqwest::Method;
use wpaas_api::apps::config::{ConfigChanges, ConfigVars};
use wpaas_api::releases::Release;

use super::target::AppArgs;
use crate::output;

/// Show config vars.
#[derive(clap::Args)]
pub struct Config {
    #[command(flatten)]
    target: AppArgs,
}

impl Config {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/config");
        output::show(&api, &path, self.target.api.json, |vars: ConfigVars| {
            println!("=== {app} Config Vars");
            let width = vars.keys().map(String::len).max().unwrap_or(0) + 1;
            for (key, value) in vars {
                println!("{:width$} {value}", format!("{key}:"));
            }
            Ok(())
        })
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
        let (app, vars) = config_vars(&self.target)?;
        match vars.get(&self.key) {
            Some(value) if self.target.api.json => output::print_json(value)?,
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
                    changes.insert(key.to_string(), Some(value.to_string()));
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
        // Unsetting what is not set changes nothing, and makes no release
        // (the API refuses it as a conflict; said here as a no-op).
        let (app, vars) = config_vars(&self.target)?;
        if !self.keys.iter().any(|key| vars.contains_key(key)) {
            let verb = if self.keys.len() == 1 { "is" } else { "are" };
            eprintln!(
                "{} {verb} not set on {app}; nothing to do",
                self.keys.join(", ")
            );
            return Ok(());
        }
        let changes = self.keys.iter().map(|k| (k.clone(), None)).collect();
        apply(&self.target, changes, "Unsetting")
    }
}

/// The app `target` names and its config vars.
fn config_vars(target: &AppArgs) -> Result<(String, ConfigVars)> {
    let app = target.app()?;
    let vars = target.api.client()?.get(&format!("/apps/{app}/config"))?;
    Ok((app, vars))
}

fn apply(target: &AppArgs, changes: ConfigChanges, verb: &str) -> Result<()> {
    let app = target.app()?;
    let keys: Vec<_> = changes.keys().cloned().collect();
    let api = target.api.client()?;
    eprint!("{verb} {} and restarting {app}... ", keys.join(", "));
    let path = format!("/apps/{app}/config");
    let json = target.api.json;
    let mut made = None;
    let done = output::change(
        &api,
        Method::PATCH,
        &path,
        &changes,
        json,
        |release: Release| {
            eprintln!("done, v{}", release.version);
            made = Some(release.version);
            Ok(())
        },
    );
    match done {
        Ok(()) if json => eprintln!("done"),
        Ok(()) => {}
        Err(_) => eprintln!("failed"),
    }
    super::releases::show_release_phase_of(&api, &app, made, &done);
    done
}
