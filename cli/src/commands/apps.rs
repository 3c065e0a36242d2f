//! `apps`, `apps:create`, `apps:info`, `apps:destroy`.

use anyhow::{bail, Result};
use reqwest::Method;
use serde_json::{json, Value};

use super::target::{ApiArgs, AppArgs};
use crate::{git_remote, output};

/// List apps.
#[derive(clap::Args)]
pub struct Apps {
    #[command(flatten)]
    api: ApiArgs,
}

impl Apps {
    pub fn run(self) -> Result<()> {
        output::show(
            &self.api.client()?,
            "/apps",
            self.api.json,
            |apps: Value| {
                println!("=== Apps");
                for app in apps.as_array().into_iter().flatten() {
                    println!("{}", app["name"].as_str().unwrap_or(""));
                }
                Ok(())
            },
        )
    }
}

/// Create an app (inside a git repository, also add the git remote `wpaas`).
#[derive(clap::Args)]
pub struct Create {
    /// The new app's name (default: the current directory's name).
    name: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

impl Create {
    pub fn run(self) -> Result<()> {
        let name = match self.name {
            Some(name) => name,
            None => AppArgs {
                app: None,
                api: self.api.clone(),
            }
            .app()?,
        };
        let api = self.api.client()?;
        output::change(
            &api,
            Method::POST,
            "/apps",
            &json!({ "name": name }),
            self.api.json,
            |_: Value| {
                println!("Creating {name}... done");
                Ok(())
            },
        )?;
        // As `heroku create` does: the repository can `git push wpaas main`.
        if git_remote::in_git_repository() {
            match git_remote::set_remote(&api, &name, "wpaas", false) {
                Ok(url) => eprintln!("Git remote wpaas set to {url}"),
                Err(err) => eprintln!("Not adding the git remote: {err:#}"),
            }
        }
        Ok(())
    }
}

/// Show an app's details.
#[derive(clap::Args)]
pub struct Info {
    #[command(flatten)]
    target: AppArgs,
}

impl Info {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        output::show(
            &api,
            &format!("/apps/{app}"),
            self.target.api.json,
            |info: Value| {
                let release = &info["release"];
                println!("=== {app}");
                println!("Web URL:   {}", info["url"].as_str().unwrap_or(""));
                match release {
                    Value::Null => println!("Release:   none yet (deploy with `wpaas deploy`)"),
                    r => println!(
                        "Release:   v{} ({})",
                        r["version"],
                        r["description"].as_str().unwrap_or("")
                    ),
                }
                println!(
                    "Created:   {}",
                    info["app"]["created_at"].as_str().unwrap_or("")
                );
                Ok(())
            },
        )
    }
}

/// Destroy an app and everything it owns.
#[derive(clap::Args)]
pub struct Destroy {
    #[command(flatten)]
    target: AppArgs,
    /// The app's name again, to confirm.
    #[arg(long)]
    confirm: Option<String>,
}

impl Destroy {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        if self.confirm.as_deref() != Some(app.as_str()) {
            bail!("this destroys {app} and all its releases; run again with --confirm {app}");
        }
        let api = self.target.api.client()?;
        output::delete(
            &api,
            &format!("/apps/{app}"),
            self.target.api.json,
            |_: Value| {
                println!("Destroying {app}... done");
                Ok(())
            },
        )
    }
}
