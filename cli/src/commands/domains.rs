//! `domains`, `domains:add`, `domains:remove`: custom hostnames for an app.

use anyhow::Result;
use reqwest::Method;
use wpaas_api::apps::AddDomain;

use super::target::AppArgs;
use crate::output;

/// List an app's custom domains.
#[derive(clap::Args)]
pub struct Domains {
    #[command(flatten)]
    target: AppArgs,
}

impl Domains {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/domains");
        output::show(&api, &path, self.target.api.json, |domains: Vec<String>| {
            println!("=== {app} Custom Domains");
            for domain in domains {
                println!("{domain}");
            }
            Ok(())
        })
    }
}

/// Route a hostname to the app (requests with that Host reach it).
#[derive(clap::Args)]
pub struct Add {
    /// e.g. www.example.com
    domain: String,
    #[command(flatten)]
    target: AppArgs,
}

impl Add {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let body = AddDomain {
            domain: self.domain.clone(),
        };
        let path = format!("/apps/{app}/domains");
        output::change(
            &api,
            Method::POST,
            &path,
            &body,
            self.target.api.json,
            |_: Vec<String>| {
                println!("Adding {} to {app}... done", self.domain);
                Ok(())
            },
        )
    }
}

/// Stop routing a hostname to the app.
#[derive(clap::Args)]
pub struct Remove {
    /// e.g. www.example.com
    domain: String,
    #[command(flatten)]
    target: AppArgs,
}

impl Remove {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/domains/{}", self.domain);
        output::delete(&api, &path, self.target.api.json, |_: Vec<String>| {
            println!("Removing {} from {app}... done", self.domain);
            Ok(())
        })
    }
}

/// Stop routing every custom hostname to the app.
#[derive(clap::Args)]
pub struct Clear {
    #[command(flatten)]
    target: AppArgs,
}

impl Clear {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let api = self.target.api.client()?;
        let path = format!("/apps/{app}/domains");
        output::delete(&api, &path, self.target.api.json, |_: Vec<String>| {
            println!("Removing all domains from {app}... done");
            Ok(())
        })
    }
}
