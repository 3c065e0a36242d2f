//! The CLI's side of the API: where the server is, the token, whom to
//! trust for https, and requests that turn `{"error": …}` answers into
//! one-line errors with a hint.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::commands::wpaas_home;
use crate::tls::{certificate_failure, Trust};

/// A configured API client.
pub struct Api {
    base: String,
    token: String,
    trust: Trust,
    http: reqwest::blocking::Client,
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

pub fn credentials_path() -> Result<PathBuf> {
    Ok(wpaas_home()?.join("credentials.json"))
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
        let token = match std::env::var("WPAAS_TOKEN").ok().filter(|s| !s.is_empty()) {
            Some(token) => token,
            None => match saved {
                Some(c) => c.token,
                None => {
                    let path = wpaas_home()?.join("token");
                    std::fs::read_to_string(&path)
                        .map(|t| t.trim().to_string())
                        .map_err(|_| {
                            anyhow!(
                                "no API token for {base}: run `wpaas login {base}`, set WPAAS_TOKEN, or start `wpaas server` with this WPAAS_HOME"
                            )
                        })?
                }
            },
        };
        Self::new(&base, token, Trust::from_ca(ca))
    }

    /// A client for the server at `base` with `token`, verifying an https
    /// server's certificate as `trust` says.
    pub fn new(base: &str, token: String, trust: Trust) -> Result<Self> {
        let mut http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(None);
        if base.starts_with("https://") {
            http = http.use_preconfigured_tls(trust.client_config()?);
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
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

    /// The API token (for git's credential helper; never print it).
    pub fn token(&self) -> &str {
        &self.token
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns the parsed JSON answer.
    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().map_err(|e| self.unreachable(e))?;
        Self::parse(response)
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
    pub fn post_streaming(&self, path: &str, body: Value) -> Result<reqwest::blocking::Response> {
        self.stream(self.http.post(self.url(path)).json(&body))
    }

    fn stream(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            Self::parse(response)?;
            unreachable!("parse fails on error statuses");
        }
        Ok(response)
    }

    fn unreachable(&self, err: reqwest::Error) -> anyhow::Error {
        if let Some(reason) = certificate_failure(&err) {
            return anyhow!(
                "could not verify the TLS certificate of {} ({reason}); if the server uses its own CA, pass --ca FILE or set WPAAS_CA=FILE",
                self.base
            );
        }
        anyhow!(
            "could not reach the wpaas API at {} ({err}); is `wpaas server` running? Use --api or WPAAS_API to point elsewhere",
            self.base
        )
    }

    fn parse(response: reqwest::blocking::Response) -> Result<Value> {
        let status = response.status();
        let text = response.text().context("could not read the API's answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        bail!("{message} (HTTP {})", status.as_u16())
    }
}

/// Reads a streamed answer (deploy, run): hands each line to `on_line` and
/// returns the JSON of the final `##wpaas-result` line, if it came.
pub fn read_result_stream(
    response: reqwest::blocking::Response,
    mut on_line: impl FnMut(&str),
) -> Result<Option<Value>> {
    use std::io::BufRead;
    let mut result = None;
    for line in std::io::BufReader::new(response).lines() {
        let line = line.context("the server's stream broke off")?;
        match line.strip_prefix(wpaas_host::control::api::RESULT_PREFIX) {
            Some(json) => result = serde_json::from_str::<Value>(json).ok(),
            None => on_line(&line),
        }
    }
    Ok(result)
}
