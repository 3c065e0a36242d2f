//! The CLI's side of the API: where the server is, the token, whom to
//! trust for https, and requests that turn `{"error": …, "code": …}`
//! answers into an [`ApiError`] the commands can tell apart by its code.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wpaas_api::stream::{self, StreamLine};
use wpaas_api::{ErrorBody, ErrorCode};

use crate::error::Hinted;
use crate::home::{credentials_path, token_path};
use crate::tls::{certificate_failure, Trust};

/// A configured API client.
pub struct Api {
    base: String,
    token: String,
    token_source: TokenSource,
    trust: Trust,
    http: reqwest::blocking::Client,
}

/// Where the CLI found the token it sends (`auth:whoami` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The WPAAS_TOKEN environment variable.
    Environment,
    /// `wpaas login`'s credentials file.
    Login,
    /// The local server's own token file in WPAAS_HOME.
    ServerHome,
    /// Given by the caller (`wpaas login` checking a new token).
    Given,
}

impl TokenSource {
    /// For people: where to look to change it.
    pub fn describe(self) -> &'static str {
        match self {
            TokenSource::Environment => "WPAAS_TOKEN",
            TokenSource::Login => "the saved login (`wpaas login`)",
            TokenSource::ServerHome => "the local server's token file (WPAAS_HOME/token)",
            TokenSource::Given => "the token given",
        }
    }
}

/// Saved by `wpaas login`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub api: String,
    pub token: String,
    /// The CA file to trust for this server (`wpaas login --ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

impl Api {
    /// Server: `--api`, `WPAAS_API`, the saved login, else the local
    /// default. Token: `WPAAS_TOKEN`, the saved login, else the local
    /// server's token file. CA for https: `--ca`, `WPAAS_CA`, the saved
    /// login's, else the system's.
    pub fn from_env(api: Option<String>, ca: Option<PathBuf>) -> Result<Self> {
        let saved: Option<Credentials> = std::fs::read(credentials_path()?)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let base = api
            .or_else(|| std::env::var("WPAAS_API").ok().filter(|s| !s.is_empty()))
            .or_else(|| saved.as_ref().map(|c| c.api.clone()))
            .unwrap_or_else(|| "http://127.0.0.1:7070".into());
        let saved = saved.filter(|c| c.api == base);
        let ca = ca
            .or_else(|| {
                std::env::var_os("WPAAS_CA")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| saved.as_ref().and_then(|c| c.ca.clone()));
        let (token, source) = match std::env::var("WPAAS_TOKEN").ok().filter(|s| !s.is_empty()) {
            Some(token) => (token, TokenSource::Environment),
            None => match saved {
                Some(c) => (c.token, TokenSource::Login),
                None => std::fs::read_to_string(token_path()?)
                    .map(|t| (t.trim().to_string(), TokenSource::ServerHome))
                    .map_err(|_| {
                        Hinted::new(
                            format!("no API token for {base}"),
                            format!("run `wpaas login {base}`, set WPAAS_TOKEN, or start `wpaas server` with this WPAAS_HOME"),
                        )
                    })?,
            },
        };
        let mut api = Self::new(&base, token, Trust::from_ca(ca))?;
        api.token_source = source;
        Ok(api)
    }

    /// A client for the server at `base` with `token`, verifying an https
    /// server's certificate as `trust` says.
    pub fn new(base: &str, token: String, trust: Trust) -> Result<Self> {
        let mut http = reqwest::blocking::Client::builder()
            .user_agent(concat!("wpaas-cli/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .timeout(None);
        if base.starts_with("https://") {
            http = http.use_preconfigured_tls(trust.client_config()?);
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            token_source: TokenSource::Given,
            trust,
            http: http.build()?,
        })
    }

    /// The CA file this client trusts for https, if one was given.
    pub fn ca_file(&self) -> Option<&Path> {
        self.trust.ca_file()
    }

    /// The server's address, e.g. `http://127.0.0.1:7070`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Where the token came from.
    pub fn token_source(&self) -> TokenSource {
        self.token_source
    }

    /// The API token (for git's credential helper; never print it).
    pub fn token(&self) -> &str {
        &self.token
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path`: the answer's JSON text as the server sent it.
    pub fn get_text(&self, path: &str) -> Result<String> {
        self.send(self.http.get(self.url(path)), "GET", path)
    }

    /// GETs `path` and decodes the answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        decode("GET", path, &self.get_text(path)?)
    }

    /// Sends `body` as JSON with `method`: the answer's JSON text.
    pub fn send_text<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<String> {
        let name = method.to_string();
        self.send(
            self.http.request(method, self.url(path)).json(body),
            &name,
            path,
        )
    }

    /// DELETEs `path`: the answer's JSON text.
    pub fn delete_text(&self, path: &str) -> Result<String> {
        self.send(self.http.delete(self.url(path)), "DELETE", path)
    }

    /// Uploads `bytes` and returns the streaming response.
    pub fn upload(&self, path: &str, bytes: Vec<u8>) -> Result<reqwest::blocking::Response> {
        self.stream(
            self.http
                .post(self.url(path))
                .header("content-type", "application/gzip")
                .body(bytes),
        )
    }

    /// GETs `path` and returns the streaming response.
    pub fn get_streaming(&self, path: &str) -> Result<reqwest::blocking::Response> {
        self.stream(self.http.get(self.url(path)))
    }

    /// POSTs `body` as JSON and returns the streaming response.
    pub fn post_streaming<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<reqwest::blocking::Response> {
        self.stream(self.http.post(self.url(path)).json(body))
    }

    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
        method: &str,
        path: &str,
    ) -> Result<String> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response
            .text()
            .with_context(|| format!("could not read the API's answer to {method} {path}"))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(ApiError::from_answer(status.as_u16(), &text).into())
    }

    fn stream(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().unwrap_or_default();
            return Err(ApiError::from_answer(status.as_u16(), &text).into());
        }
        Ok(response)
    }

    fn unreachable(&self, err: reqwest::Error) -> anyhow::Error {
        if let Some(reason) = certificate_failure(&err) {
            return Hinted::new(
                format!(
                    "could not verify the TLS certificate of {} ({reason})",
                    self.base
                ),
                "if the server uses its own CA, pass --ca FILE or set WPAAS_CA=FILE",
            )
            .into();
        }
        // reqwest's own message names only the URL; the reason is at the
        // bottom of its source chain.
        let mut reason: &dyn std::error::Error = &err;
        while let Some(source) = reason.source() {
            reason = source;
        }
        Hinted::new(
            format!("could not reach the wpaas API at {} ({reason})", self.base),
            "is `wpaas server` running? Use --api or WPAAS_API to point elsewhere",
        )
        .into()
    }
}

/// What the API answered instead of success: its error body (message and
/// machine-readable code; an older server's code is read from the status)
/// and the status. It reads as the server's message alone: the status is
/// the API's business, not the user's (`--json` callers get the code).
#[derive(Debug, thiserror::Error)]
#[error("{}", body.error)]
pub struct ApiError {
    pub status: u16,
    pub body: ErrorBody,
}

impl ApiError {
    fn from_answer(status: u16, text: &str) -> Self {
        Self {
            status,
            body: ErrorBody::from_response(status, text.as_bytes()),
        }
    }

    /// The request clashed with what exists (an app of that name, …).
    pub fn is_conflict(&self) -> bool {
        self.body.code == ErrorCode::Conflict
    }

    /// The server refused the token.
    pub fn is_unauthorized(&self) -> bool {
        self.body.code == ErrorCode::Unauthorized
    }

    /// The app, release, build or domain named does not exist.
    pub fn is_not_found(&self) -> bool {
        self.body.code == ErrorCode::NotFound
    }

    /// The API's error in `err`, if that is what it is.
    pub fn of(err: &anyhow::Error) -> Option<&ApiError> {
        err.downcast_ref()
    }
}

/// Decodes the API's answer to `method path`; a shape this CLI does not
/// know means the server is another version.
pub fn decode<T: DeserializeOwned>(method: &str, path: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| {
        Hinted::new(
            format!("the API's answer to {method} {path} is not what this wpaas expects ({err})"),
            "the server may run another version of wpaas; use a CLI of the same version",
        )
        .into()
    })
}

/// Reads a streamed answer (deploy, run): hands each line to `on_line` and
/// returns the final result line, if it came.
pub fn read_result_stream<T: DeserializeOwned>(
    response: reqwest::blocking::Response,
    mut on_line: impl FnMut(&str),
) -> Result<Option<T>> {
    use std::io::BufRead;
    let mut result = None;
    for line in std::io::BufReader::new(response).lines() {
        let line = line.context("the server's stream broke off")?;
        match stream::read_line::<T>(&line)? {
            StreamLine::Result(value) => result = Some(value),
            StreamLine::Line(line) => on_line(line),
        }
    }
    Ok(result)
}
