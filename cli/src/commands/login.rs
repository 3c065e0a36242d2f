//! `wpaas login URL`: check a token against a (remote) server and remember
//! both. The token never goes on the command line, where `ps` and shell
//! history would show it.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use wpaas_api::apps::App;

use super::target::ApiArgs;
use crate::client::{Api, ApiError, Credentials};
use crate::error::Hinted;
use crate::home::credentials_path;
use crate::output;
use crate::tls::Trust;

/// Log in to a wpaas server: check its token and remember both.
///
/// The token (the `token` file in the server's WPAAS_HOME) is read from
/// standard input when that is not a terminal (`wpaas login URL <
/// token-file`), else asked for without echo. It is saved, readable only by
/// you, in WPAAS_HOME/credentials.json, and only once the server accepted
/// it.
#[derive(clap::Args)]
pub struct Login {
    /// The API's address, e.g. https://paas.example.com:7070.
    #[arg(value_name = "URL", required_unless_present = "api")]
    url: Option<String>,
    /// The same as URL.
    #[arg(long = "api", hide = true, conflicts_with = "url")]
    api: Option<String>,
    /// For an https server: trust only the CA certificates in FILE (PEM);
    /// remembered with the login.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Print `{"api": URL}` once logged in.
    #[arg(long)]
    json: bool,
}

impl Login {
    pub fn run(self) -> Result<()> {
        let url = self
            .url
            .or(self.api)
            .context("which server? `wpaas login URL`")?;
        let url = url.trim_end_matches('/').to_string();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            bail!("`{url}` is not a URL: use http://HOST:PORT or https://HOST:PORT");
        }
        // Saved absolute, so that later commands find it from anywhere.
        let ca = match self.ca {
            Some(ca) => Some(
                std::fs::canonicalize(&ca)
                    .with_context(|| format!("could not find the CA file {}", ca.display()))?,
            ),
            None => None,
        };
        let token = read_token()?;
        let api = Api::new(&url, token.clone(), Trust::from_ca(ca.clone()))?;
        if !accepted(&api)? {
            return Err(Hinted::new(
                format!("{url} refused this token; nothing was saved"),
                "the token is the `token` file in the server's WPAAS_HOME",
            )
            .into());
        }
        let path = credentials_path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let body = serde_json::to_vec_pretty(&Credentials {
            api: url.clone(),
            token,
            ca,
        })?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("could not write {}", path.display()))?;
        file.write_all(&body)?;
        if self.json {
            return output::print_json(&serde_json::json!({ "api": url }));
        }
        println!("Logged in to {url}");
        Ok(())
    }
}

/// Whether the server accepts `api`'s token (`GET /apps`): false when it
/// refuses it, an error when it cannot say (unreachable, another error).
fn accepted(api: &Api) -> Result<bool> {
    match api.get::<Vec<App>>("/apps") {
        Ok(_) => Ok(true),
        Err(err) if ApiError::of(&err).is_some_and(ApiError::is_unauthorized) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The token from standard input, or from a prompt without echo when
/// standard input is a terminal.
fn read_token() -> Result<String> {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("API token (the `token` file in the server's WPAAS_HOME): ")
            .context("could not read the token from the terminal")?
    } else {
        let mut input = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut input)
            .context("could not read the token from standard input")?;
        input
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!(
            "no token given: pipe it in (`wpaas login URL < token-file`) or type it at the prompt"
        );
    }
    Ok(token)
}

/// Show which server and token the CLI uses, once the server accepted the
/// token (Heroku's `auth:whoami`; one token per server, so no user name).
#[derive(clap::Args)]
pub struct Whoami {
    #[command(flatten)]
    api: ApiArgs,
}

impl Whoami {
    pub fn run(self) -> Result<()> {
        let api = self.api.client()?;
        let source = api.token_source();
        if !accepted(&api)? {
            return Err(Hinted::new(
                format!(
                    "{} refused the token from {}",
                    api.base(),
                    source.describe()
                ),
                format!("run `wpaas login {}` with the server's token", api.base()),
            )
            .into());
        }
        if self.api.json {
            return output::print_json(&serde_json::json!({
                "api": api.base(),
                "token_source": source,
            }));
        }
        println!("{}", api.base());
        println!("token from {}, accepted", source.describe());
        Ok(())
    }
}

/// Forget the saved login (`wpaas login`'s server and token). The CLI then
/// finds its server and token as before any login: WPAAS_API and
/// WPAAS_TOKEN, else the local server's.
#[derive(clap::Args)]
pub struct Logout {
    /// Print `{"logged_out": URL or null}`.
    #[arg(long)]
    json: bool,
}

impl Logout {
    pub fn run(self) -> Result<()> {
        let path = credentials_path()?;
        let saved: Option<Credentials> = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("could not remove {}", path.display()))
            }
        }
        let api = saved.map(|c| c.api);
        if self.json {
            return output::print_json(&serde_json::json!({ "logged_out": api }));
        }
        match api {
            Some(api) => println!("Logged out of {api}"),
            None => println!("Not logged in; nothing to forget"),
        }
        Ok(())
    }
}
