//! `apps:rename [OLD] NEW`: the app goes by a new name, with everything it
//! has; the checkout's `wpaas` git remote follows it.

use anyhow::{bail, Result};
use reqwest::Method;
use wpaas_api::apps::{App, RenameApp};

use super::target::AppArgs;
use crate::git_remote::{self, DEFAULT_REMOTE};
use crate::output;

/// Rename an app (its releases, config, domains, data and git repository
/// go with it). `apps:rename NEW` renames the app of -a / the git remote /
/// the directory; `apps:rename OLD NEW` names both.
#[derive(clap::Args)]
pub struct Rename {
    /// `NEW`, or `OLD NEW`.
    #[arg(required = true, num_args = 1..=2, value_name = "NAME")]
    names: Vec<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Rename {
    pub fn run(self) -> Result<()> {
        let (old, new) = match self.names.as_slice() {
            [new] => (self.target.app()?, new.clone()),
            [old, new] => {
                if self.target.app.as_ref().is_some_and(|app| app != old) {
                    bail!(
                        "-a names {} but the arguments rename {old}; give one of them",
                        self.target.app.as_deref().unwrap_or_default()
                    );
                }
                (old.clone(), new.clone())
            }
            _ => unreachable!("clap takes one or two names"),
        };
        let api = self.target.api.client()?;
        output::change(
            &api,
            Method::PATCH,
            &format!("/apps/{old}"),
            &RenameApp { name: new.clone() },
            self.target.api.json,
            |_: App| {
                println!("Renaming {old} to {new}... done");
                Ok(())
            },
        )?;
        // As `heroku apps:rename` does: this checkout pushes to the new
        // name; others are the user's to update.
        let remote = self.target.remote.as_deref().unwrap_or(DEFAULT_REMOTE);
        if git_remote::in_git_repository()
            && git_remote::app_of_remote(remote).as_deref() == Some(&old)
        {
            match git_remote::set_remote(&api, &new, remote, true) {
                Ok(url) => eprintln!("Git remote {remote} updated to {url}"),
                Err(err) => eprintln!("Could not update the git remote {remote}: {err:#}"),
            }
        }
        eprintln!("Other checkouts of {old}: run `wpaas git:remote -a {new}` there");
        Ok(())
    }
}
