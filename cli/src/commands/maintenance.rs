//! `maintenance`, `maintenance:on`, `maintenance:off`: while on, the router
//! answers every request to the app with a 503 maintenance page (with
//! `Retry-After`); the app's processes keep running, so turning it off
//! serves again at once.

use anyhow::Result;
use reqwest::Method;
use wpaas_api::apps::Maintenance;

use super::target::AppArgs;
use crate::output;

/// Show whether the app is in maintenance mode (`on` or `off`).
#[derive(clap::Args)]
pub struct Show {
    #[command(flatten)]
    target: AppArgs,
}

impl Show {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/maintenance");
        output::show(&api, &path, self.target.api.json, |state: Maintenance| {
            println!("{}", on_off(state.maintenance));
            Ok(())
        })
    }
}

/// Put the app in maintenance mode: every request gets a 503 maintenance
/// page; the processes keep running.
#[derive(clap::Args)]
pub struct On {
    #[command(flatten)]
    target: AppArgs,
}

impl On {
    pub fn run(self) -> Result<()> {
        switch(&self.target, true)
    }
}

/// Take the app out of maintenance mode: it serves again at once.
#[derive(clap::Args)]
pub struct Off {
    #[command(flatten)]
    target: AppArgs,
}

impl Off {
    pub fn run(self) -> Result<()> {
        switch(&self.target, false)
    }
}

/// `PUT` (on) or `DELETE` (off) the app's maintenance mode, as Heroku
/// says it: `Enabling maintenance mode for APP... done`.
fn switch(target: &AppArgs, on: bool) -> Result<()> {
    let app = target.app()?;
    let api = target.api.client()?;
    let path = format!("/apps/{app}/maintenance");
    let render = |_: Maintenance| {
        let doing = if on { "Enabling" } else { "Disabling" };
        println!("{doing} maintenance mode for {app}... done");
        Ok(())
    };
    if on {
        let body = serde_json::json!({});
        output::change(&api, Method::PUT, &path, &body, target.api.json, render)
    } else {
        output::delete(&api, &path, target.api.json, render)
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}
