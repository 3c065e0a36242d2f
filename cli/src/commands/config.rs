//! `config`, `config:get`, `config:set`, `config:unset`, `config:pull`,
//! `config:edit`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use reqwest::Method;
use wpaas_api::apps::config::{ConfigChanges, ConfigVars};
use wpaas_api::releases::Release;

use super::target::AppArgs;
use crate::client::Api;
use crate::dotenv;
use crate::error::Hinted;
use crate::output;

/// Show config vars.
#[derive(clap::Args)]
pub struct Config {
    /// As KEY=VALUE lines a shell or a .env file reads.
    #[arg(short = 's', long)]
    shell: bool,
    #[command(flatten)]
    target: AppArgs,
}

impl Config {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/config");
        output::show(&api, &path, self.target.api.json, |vars: ConfigVars| {
            if self.shell {
                print!("{}", dotenv::render(&vars));
                return Ok(());
            }
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
        let (app, _, vars) = config_vars(&self.target)?;
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
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["pairs", "file"]))]
pub struct Set {
    /// KEY=VALUE pairs.
    #[arg(value_name = "KEY=VALUE")]
    pairs: Vec<String>,
    /// Also set every variable in this .env file (KEY=VALUE lines; pairs
    /// given on the command line win).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    #[command(flatten)]
    target: AppArgs,
}

impl Set {
    pub fn run(self) -> Result<()> {
        let mut changes = ConfigChanges::new();
        if let Some(file) = &self.file {
            for (key, value) in read_env_file(file)? {
                changes.insert(key, Some(value));
            }
        }
        for pair in &self.pairs {
            match pair.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    changes.insert(key.to_string(), Some(value.to_string()));
                }
                _ => bail!("`{pair}` is not KEY=VALUE (e.g. wpaas config:set GREETING=hello)"),
            }
        }
        if changes.is_empty() {
            bail!("nothing to set: the file has no KEY=VALUE lines");
        }
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        apply(&self.target, &api, &app, changes)
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
        let (app, api, vars) = config_vars(&self.target)?;
        if !self.keys.iter().any(|key| vars.contains_key(key)) {
            let verb = if self.keys.len() == 1 { "is" } else { "are" };
            eprintln!(
                "{} {verb} not set on {app}; nothing to do",
                self.keys.join(", ")
            );
            return Ok(());
        }
        let changes = self.keys.iter().map(|k| (k.clone(), None)).collect();
        apply(&self.target, &api, &app, changes)
    }
}

/// The app `target` names, the API client, and the app's config vars.
fn config_vars(target: &AppArgs) -> Result<(String, Api, ConfigVars)> {
    let app = target.app()?;
    let api = target.api.client()?;
    let vars = api.get(&format!("/apps/{app}/config"))?;
    Ok((app, api, vars))
}

/// Write the app's config vars to a .env file (for running it locally).
#[derive(clap::Args)]
pub struct Pull {
    /// The file to write.
    #[arg(long, value_name = "FILE", default_value = ".env")]
    file: PathBuf,
    /// Where the file and the app disagree, take the app's value (without
    /// it the file's value stays). Variables only in the file always stay.
    #[arg(short = 'o', long)]
    overwrite: bool,
    #[command(flatten)]
    target: AppArgs,
}

impl Pull {
    pub fn run(self) -> Result<()> {
        let (app, _, remote) = config_vars(&self.target)?;
        let mut vars = if self.file.exists() {
            read_env_file(&self.file)?
        } else {
            ConfigVars::new()
        };
        let mut kept = Vec::new();
        for (key, value) in remote {
            match vars.get(&key) {
                Some(local) if *local != value && !self.overwrite => kept.push(key),
                _ => {
                    vars.insert(key, value);
                }
            }
        }
        write_private(&self.file, dotenv::render(&vars).as_bytes())?;
        if self.target.api.json {
            return output::print_json(&vars);
        }
        let count = match vars.len() {
            1 => "1 var".to_string(),
            n => format!("{n} vars"),
        };
        println!(
            "Config vars of {app} written to {} ({count})",
            self.file.display()
        );
        if !kept.is_empty() {
            println!(
                "Kept the file's values of {} (pass --overwrite to take {app}'s)",
                kept.join(", ")
            );
        }
        Ok(())
    }
}

/// Edit the config vars in $VISUAL or $EDITOR; what changed is set and
/// unset in one release.
#[derive(clap::Args)]
pub struct Edit {
    #[command(flatten)]
    target: AppArgs,
}

impl Edit {
    pub fn run(self) -> Result<()> {
        let (app, api, before) = config_vars(&self.target)?;
        let dir =
            tempfile::tempdir().context("could not make a directory for the editor's file")?;
        let file = dir.path().join(format!("{app}.env"));
        let header = format!(
            "# Config vars of {app}: KEY=VALUE a line. Save and quit to apply;\n\
             # a removed line unsets its var. Nothing changed, nothing happens.\n"
        );
        write_private(
            &file,
            format!("{header}{}", dotenv::render(&before)).as_bytes(),
        )?;
        run_editor(&file)?;
        let after = std::fs::read_to_string(&file)
            .context("could not read the edited file; nothing was changed")
            .and_then(|text| parse_env(&text, "the edited config (nothing was changed)"))?;
        let mut changes = ConfigChanges::new();
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            changes.insert(key.clone(), None);
        }
        for (key, value) in after {
            if before.get(&key) != Some(&value) {
                changes.insert(key, Some(value));
            }
        }
        if changes.is_empty() {
            if self.target.api.json {
                return output::print_json(&serde_json::Value::Null);
            }
            println!("No changes to the config vars of {app}");
            return Ok(());
        }
        apply(&self.target, &api, &app, changes)
    }
}

/// Runs `$VISUAL`, `$EDITOR` or `vi` on `file` (through the shell, as
/// git does, so an editor with flags works) and waits for it.
fn run_editor(file: &std::path::Path) -> Result<()> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file)
        .status()
        .with_context(|| format!("could not run the editor {editor:?}"))?;
    if !status.success() {
        return Err(Hinted::new(
            format!("the editor {editor:?} failed ({status}); nothing was changed"),
            "set VISUAL or EDITOR to the editor to use",
        )
        .into());
    }
    Ok(())
}

fn read_env_file(path: &std::path::Path) -> Result<ConfigVars> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    parse_env(&text, &path.display().to_string())
}

/// `text` as .env lines; an error names `what` and the line.
fn parse_env(text: &str, what: &str) -> Result<ConfigVars> {
    dotenv::parse(text).map_err(|err| {
        Hinted::new(
            format!("{what}: {err}"),
            "each line is KEY=VALUE (quote a value with spaces: KEY='a b'); # starts a comment",
        )
        .into()
    })
}

/// Config vars are secrets: the file is readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    // `mode` applies to a new file only; one that was there is narrowed.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("could not make {} private", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("could not write {}", path.display()))
}

/// Sends `changes` as one release. Without --json it says what it does on
/// stderr (the release's version on stdout's side stays the API's).
fn apply(target: &AppArgs, api: &Api, app: &str, changes: ConfigChanges) -> Result<()> {
    let json = target.api.json;
    let say = |set: bool| {
        let keys: Vec<&str> = changes
            .iter()
            .filter(|(_, value)| value.is_some() == set)
            .map(|(key, _)| key.as_str())
            .collect();
        keys.join(", ")
    };
    let doing = match (say(true), say(false)) {
        (set, unset) if unset.is_empty() => format!("Setting {set}"),
        (set, unset) if set.is_empty() => format!("Unsetting {unset}"),
        (set, unset) => format!("Setting {set}, unsetting {unset}"),
    };
    if !json {
        eprint!("{doing} and restarting {app}... ");
    }
    let path = format!("/apps/{app}/config");
    let mut made = None;
    let done = output::change(
        api,
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
    if done.is_err() && !json {
        eprintln!("failed");
    }
    super::releases::show_release_phase_of(api, app, made, &done);
    done
}
