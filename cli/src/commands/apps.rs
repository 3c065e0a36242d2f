//! `apps`, `apps:create`, `apps:info`, `apps:destroy`.

use anyhow::{bail, Result};
use reqwest::Method;
use wpaas_api::apps::{App, AppInfo, CreateApp, Destroyed};

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
            |apps: Vec<App>| {
                println!("=== Apps");
                for app in apps {
                    println!("{}", app.name);
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
                remote: None,
                api: self.api.clone(),
            }
            .app()?,
        };
        let api = self.api.client()?;
        output::change(
            &api,
            Method::POST,
            "/apps",
            &CreateApp { name: name.clone() },
            self.api.json,
            |_: App| {
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
        let path = format!("/apps/{app}");
        output::show(&api, &path, self.target.api.json, |info: AppInfo| {
            println!("=== {app}");
            println!("Web URL:   {}", info.url);
            match info.release {
                None => println!("Release:   none yet (deploy with `wpaas deploy`)"),
                Some(r) => println!("Release:   v{} ({})", r.version, r.description),
            }
            println!("Created:   {}", info.app.created_at);
            if info.app.maintenance {
                println!("Maintenance: on (`wpaas maintenance:off` serves again)");
            }
            for b in &info.data {
                println!("Data:      {} ({} keys, {} bytes)", b.name, b.keys, b.bytes);
            }
            Ok(())
        })
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
            |_: Destroyed| {
                println!("Destroying {app}... done");
                Ok(())
            },
        )
    }
}
