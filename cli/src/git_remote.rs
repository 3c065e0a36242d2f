//! The current repository's git remote for an app: which app the remote
//! `wpaas` names, and setting a remote (with its credential helper) up.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::client::Api;

/// Whether the current directory is inside a git repository.
pub fn in_git_repository() -> bool {
    Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The git remote `wpaas` commands read the app from when neither `-a`
/// nor `-r` is given (Heroku's is `heroku`).
pub const DEFAULT_REMOTE: &str = "wpaas";

/// The URL of git remote `remote` of the current directory's repository,
/// if it has one.
pub fn remote_url(remote: &str) -> Option<String> {
    git_output(&["remote", "get-url", remote])
}

/// The app a remote URL names (`http://HOST/git/APP.git`), if it is a
/// wpaas app's repository.
pub fn app_of_remote(remote: &str) -> Option<String> {
    app_from_remote_url(&remote_url(remote)?)
}

fn app_from_remote_url(url: &str) -> Option<String> {
    let (_, path) = url.rsplit_once("/git/")?;
    let app = path.trim_end_matches('/').trim_end_matches(".git");
    (!app.is_empty() && !app.contains('/')).then(|| app.to_string())
}

/// Points `remote` at APP's repository on the server and sets the
/// credential helper for the server; returns the URL. An existing remote
/// with another URL is changed when `replace`, else it is an error.
pub fn set_remote(api: &Api, app: &str, remote: &str, replace: bool) -> Result<String> {
    let url = format!("{}/git/{app}.git", api.base());
    match git_output(&["remote", "get-url", remote]) {
        Some(existing) if existing == url => {}
        Some(existing) if !replace => bail!(
            "git remote {remote} already points at {existing}; run `wpaas git:remote -a {app}` to change it"
        ),
        Some(_) => git(&["remote", "set-url", remote, &url])?,
        None => git(&["remote", "add", remote, &url])?,
    }
    // One helper for the whole server (git matches credentials by host),
    // after an empty entry that drops helpers configured globally, so a
    // stale stored password is never tried first.
    let key = format!("credential.{}.helper", api.base());
    let exe = std::env::current_exe().context("could not find the wpaas executable")?;
    let helper = format!("!{} git-credential", shell_quote(&exe));
    let _ = git(&["config", "--local", "--unset-all", &key]);
    git(&["config", "--local", "--add", &key, ""])?;
    git(&["config", "--local", "--add", &key, &helper])?;
    // git verifies an https server with its own TLS library: tell it the
    // CA this client trusts, for this server only.
    if let (true, Some(ca)) = (api.base().starts_with("https://"), api.ca_file()) {
        let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_path_buf());
        let key = format!("http.{}/.sslCAInfo", api.base());
        git(&["config", "--local", &key, &ca.to_string_lossy()])?;
    }
    Ok(url)
}

/// Runs git in the current directory; its stderr on failure.
fn git(args: &[&str]) -> Result<()> {
    let output = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("could not run git; is it installed?")?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs git in the current directory; its trimmed stdout when it succeeds.
pub fn git_output(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// `'path'` for sh, as git runs `!` credential helpers through the shell.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_from_the_wpaas_remote() {
        let app = |url| app_from_remote_url(url);
        assert_eq!(
            app("http://127.0.0.1:7070/git/hello.git").as_deref(),
            Some("hello")
        );
        assert_eq!(app("http://h:1/git/hello").as_deref(), Some("hello"));
        assert_eq!(app("https://git.heroku.com/hello.git"), None);
        assert_eq!(app("http://h/git/"), None);
        assert_eq!(app("http://h/git/a/b.git"), None);
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote(Path::new("/a b/w'p")), r"'/a b/w'\''p'");
    }
}
