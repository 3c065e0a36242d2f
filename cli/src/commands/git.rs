//! `git push` deploys, client and server side: `git:remote` sets up a
//! repository to push to an app; `git-credential` is the credential helper
//! git runs for that remote; `git-hook` is the server repositories'
//! pre-receive hook, which deploys the pushed commit.

use std::io::{BufRead, Read};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::json;
use wpaas_api::apps::AppInfo;
use wpaas_api::builds::DeployResult;

use super::target::{ApiArgs, AppArgs};
use crate::client::{read_result_stream, Api};
use crate::git_remote::{git_output, in_git_repository, set_remote};
use crate::output;
use crate::tls::Trust;

/// The branches a push deploys.
const DEPLOY_BRANCHES: [&str; 2] = ["refs/heads/main", "refs/heads/master"];

/// Add a git remote (default `wpaas`) that deploys APP on `git push`.
///
/// Also sets this repository's credential helper for the server to
/// `wpaas git-credential`, which hands git the API token, so a plain
/// `git push wpaas main` works and the token is never printed.
#[derive(clap::Args)]
pub struct Remote {
    /// The app (default: the current directory's name).
    #[arg(short = 'a', long = "app")]
    app: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
    /// The remote's name.
    #[arg(short = 'r', long = "remote", default_value = "wpaas")]
    remote: String,
}

impl Remote {
    pub fn run(self) -> Result<()> {
        // Not AppArgs: its -r names the remote to read, this one the
        // remote to write.
        let target = AppArgs {
            app: self.app.clone(),
            remote: None,
            api: self.api.clone(),
        };
        let app = target.app()?;
        let api = self.api.client()?;
        api.get::<AppInfo>(&format!("/apps/{app}"))?;
        if !in_git_repository() {
            bail!("not in a git repository: run `git init` first, or cd into one");
        }
        let url = set_remote(&api, &app, &self.remote, true)?;
        if self.api.json {
            return output::print_json(&json!({ "remote": self.remote, "url": url }));
        }
        println!("Git remote {} set to {url}", self.remote);
        println!("Deploy with: git push {} main", self.remote);
        Ok(())
    }
}

/// Answer git's credential requests for a wpaas server (run by git).
#[derive(clap::Args)]
pub struct Credential {
    /// get, store or erase.
    operation: String,
}

impl Credential {
    /// git sends `key=value` lines; for `get` the answer is the user name
    /// `wpaas` and the token of that server, found as every command finds
    /// it (WPAAS_TOKEN, the saved login, the local server's token file).
    pub fn run(self) -> Result<()> {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        if self.operation != "get" {
            return Ok(());
        }
        let field = |key: &str| {
            input
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        let (Some(protocol), Some(host)) = (field("protocol"), field("host")) else {
            return Ok(());
        };
        let api = Api::from_env(Some(format!("{protocol}://{host}")), None)?;
        println!("username=wpaas");
        println!("password={}", api.token());
        Ok(())
    }
}

/// Deploy a push (run by git on the server: the repositories' pre-receive hook).
#[derive(clap::Args)]
pub struct Hook {
    /// The hook: pre-receive.
    hook: String,
}

impl Hook {
    /// Reads git's `OLD NEW REF` lines; refuses refs other than main and
    /// master; builds and releases the new commit of main (or master)
    /// through the API; fails, so that git rejects the push, when the
    /// deploy does.
    pub fn run(self) -> Result<()> {
        if self.hook != "pre-receive" {
            bail!(
                "unknown git hook {:?}: wpaas installs pre-receive",
                self.hook
            );
        }
        let env =
            |name: &str| {
                std::env::var(name).ok().filter(|v| !v.is_empty()).with_context(|| {
                format!("{name} is not set: this hook runs only inside a push to `wpaas server`")
            })
            };
        let (base, token, app) = (env("WPAAS_API")?, env("WPAAS_TOKEN")?, env("WPAAS_APP")?);
        let mut updates = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [old, new, name] = fields[..] else {
                bail!("unexpected line from git: {line:?}");
            };
            updates.push(Update {
                old: old.into(),
                new: new.into(),
                name: name.into(),
            });
        }
        let refused: Vec<&Update> = updates
            .iter()
            .filter(|u| !DEPLOY_BRANCHES.contains(&u.name.as_str()))
            .collect();
        if !refused.is_empty() {
            for update in &refused {
                eprintln!(
                    " !     Refusing {}: only main or master deploy to {app}.",
                    update.name
                );
            }
            let branch = refused[0].name.trim_start_matches("refs/heads/");
            eprintln!(" !     To deploy another branch: git push wpaas {branch}:main");
            bail!("push rejected: only main or master can be pushed");
        }
        let deploys: Vec<&Update> = updates.iter().filter(|u| !u.is_deletion()).collect();
        for update in updates.iter().filter(|u| u.is_deletion()) {
            eprintln!(
                "-----> Deleting {} does not stop {app}: its current release keeps serving",
                update.name
            );
        }
        let update = match deploys[..] {
            [] => return Ok(()),
            [update] => update,
            _ => bail!("push rejected: push main or master, not both at once"),
        };
        if !update.is_current() {
            eprintln!(
                " !     {} moved while you pushed (another push landed first).",
                update.name
            );
            eprintln!(" !     Fetch and merge what is there now, then push again.");
            bail!("push rejected: the branch moved; nothing was deployed");
        }
        let short = &update.new[..7.min(update.new.len())];
        let tarball = archive(&update.new)?;
        eprintln!(
            "-----> Deploying {short} to {app} ({} KiB of source)",
            tarball.len() / 1024
        );
        // The server calls itself on loopback, where its certificate's
        // names do not apply: it pins the certificate instead.
        let trust = match std::env::var("WPAAS_API_CERT_SHA256") {
            Ok(sha256) if !sha256.is_empty() => Trust::Pinned(sha256),
            _ => Trust::System,
        };
        let api = Api::new(&base, token, trust)?;
        let response = api.upload(
            &format!("/apps/{app}/deploy?commit={}", update.new),
            tarball,
        )?;
        let result = read_result_stream::<DeployResult>(response, |line| eprintln!("{line}"))?;
        match result {
            Some(DeployResult::Released { .. }) => Ok(()),
            Some(DeployResult::Failed { .. }) => bail!("push rejected: the deploy failed; {app} keeps serving its current release"),
            None => bail!("push rejected: the server ended the deploy without a result; see `wpaas releases -a {app}`"),
        }
    }
}

/// One line of a pre-receive hook's input.
struct Update {
    old: String,
    new: String,
    name: String,
}

impl Update {
    fn is_deletion(&self) -> bool {
        self.new.bytes().all(|b| b == b'0')
    }

    /// Whether the branch still is where the pusher saw it. git checks this
    /// only after the hook, so a push that lost a race with another one
    /// would be deployed and then refused; the server runs one push per app
    /// at a time, so checking here is enough.
    fn is_current(&self) -> bool {
        let current = git_output(&["rev-parse", "--verify", "--quiet", &self.name]);
        match current {
            Some(current) => current == self.old,
            None => self.old.bytes().all(|b| b == b'0'),
        }
    }
}

/// `git archive --format=tar.gz COMMIT^{tree}` in the repository the hook
/// runs in (git gives the hook the pushed objects, still in quarantine,
/// through its environment). The tree, not the commit: for a commit git adds
/// a pax header with its id, which the upload checks refuse as a special
/// entry.
fn archive(commit: &str) -> Result<Vec<u8>> {
    let output = Command::new("git")
        .args(["archive", "--format=tar.gz", &format!("{commit}^{{tree}}")])
        .stdin(Stdio::null())
        .output()
        .context("could not run git archive")?;
    if !output.status.success() {
        bail!(
            "git archive {commit} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}
