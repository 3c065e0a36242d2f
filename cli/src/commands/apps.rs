//! `apps`, `apps:create`, `apps:info`, `apps:destroy`.

use anyhow::{bail, Result};
use reqwest::Method;
use serde_json::{json, Value};

use super::target::{ApiArgs, AppArgs};

/// List apps.
#[derive(clap::Args)]
pub struct Apps {
    #[command(flatten)]
    api: ApiArgs,
}

impl Apps {
    pub fn run(self) -> Result<()> {
        let apps = self.api.client()?.call(Method::GET, "/apps", None)?;
        if self.api.json {
            println!("{apps}");
            return Ok(());
        }
        println!("=== Apps");
        for app in apps.as_array().into_iter().flatten() {
            println!("{}", app["name"].as_str().unwrap_or(""));
        }
        Ok(())
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
        let app = api.call(Method::POST, "/apps", Some(json!({ "name": name })))?;
        if self.api.json {
            println!("{app}");
        } else {
            println!("Creating {name}... done");
        }
        // As `heroku create` does: the repository can `git push wpaas main`.
        if super::git::in_git_repository() {
            match super::git::set_remote(&api, &name, "wpaas", false) {
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
        let info = self
            .target
            .api
            .client()?
            .call(Method::GET, &format!("/apps/{app}"), None)?;
        if self.target.api.json {
            println!("{info}");
            return Ok(());
        }
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
        self.target
            .api
            .client()?
            .call(Method::DELETE, &format!("/apps/{app}"), None)?;
        println!("Destroying {app}... done");
        Ok(())
    }
}
