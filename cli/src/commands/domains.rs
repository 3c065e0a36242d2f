//! `domains`, `domains:add`, `domains:remove`: custom hostnames for an app.

use anyhow::Result;
use reqwest::Method;
use serde_json::json;

use super::target::AppArgs;

/// List an app's custom domains.
#[derive(clap::Args)]
pub struct Domains {
    #[command(flatten)]
    target: AppArgs,
}

impl Domains {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let domains =
            self.target
                .api
                .client()?
                .call(Method::GET, &format!("/apps/{app}/domains"), None)?;
        if self.target.api.json {
            println!("{domains}");
            return Ok(());
        }
        println!("=== {app} Custom Domains");
        for domain in domains.as_array().into_iter().flatten() {
            println!("{}", domain.as_str().unwrap_or(""));
        }
        Ok(())
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
        self.target.api.client()?.call(
            Method::POST,
            &format!("/apps/{app}/domains"),
            Some(json!({ "domain": self.domain })),
        )?;
        println!("Adding {} to {app}... done", self.domain);
        Ok(())
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
        self.target.api.client()?.call(
            Method::DELETE,
            &format!("/apps/{app}/domains/{}", self.domain),
            None,
        )?;
        println!("Removing {} from {app}... done", self.domain);
        Ok(())
    }
}
