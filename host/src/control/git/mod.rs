//! `git push` deploys: git's smart HTTP protocol at `/git/APP.git/…` on the
//! API port, served by running `git http-backend` as a CGI program over a
//! bare repository per app (`WPAAS_HOME/git/APP.git`).
//!
//! Every repository has a `pre-receive` hook that runs this very binary
//! (`wpaas git-hook pre-receive`). Git runs it after it received the pushed
//! objects and before it moves any branch: the hook archives the pushed
//! commit and deploys it through the API's deploy endpoint, streaming the
//! build to the pusher (git shows the lines as `remote: …`). If the build or
//! the release fails the hook fails, git rejects the push and the branch
//! keeps pointing at the commit that is serving.
//!
//! A push may send at most the server's upload limit (`--max-upload`): past
//! it the copy into http-backend stops, git is stopped (so nothing of the
//! push is kept and no branch moves), and the pusher reads why on git's
//! error side band (`remote: wpaas: this push is larger than …`).
//!
//! The hook learns the API address, the token and the app from http-backend's
//! environment, which git passes on to hooks: nothing secret is written into
//! the repository.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use http::{HeaderValue, StatusCode};
use hyper::body::Incoming;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

mod auth;
mod cgi;

use super::keyed_lock::{KeyGuard, KeyedLock};
use super::platform::Platform;
use super::store::validate_app_name;
use crate::respond::text;
use crate::runtime::BoxBody;
use auth::authorized_user;
use cgi::{copy_body, read_cgi_head, remove_quarantine, stream_rest, too_big_message, was_stopped};

/// Requests under this path are git's, not the JSON API's.
pub const PATH_PREFIX: &str = "/git/";

/// Variables passed from the server's environment to http-backend (and so to
/// the hook). Everything else is left out, as for any CGI program.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "GIT_EXEC_PATH"];

/// Serves `/git/APP.git/…` for one `wpaas server`.
pub struct GitHttp {
    /// The API's own address, as the hook reaches it.
    api_url: String,
    /// The `wpaas` binary the hook runs.
    exe: PathBuf,
    /// Serialises creating repositories and (re)writing their hook.
    setup: tokio::sync::Mutex<()>,
    /// One lock per app, held by a push from its start until git has
    /// updated (or refused to update) the branch. Without it a second push
    /// could deploy between the first one's deploy and its branch update,
    /// and then find its own update refused, with its commit serving.
    pushes: KeyedLock,
    /// With TLS: the SHA-256 of the API's certificate, which the hook pins
    /// (it calls the API on loopback, where the certificate's names do not
    /// apply).
    api_cert_sha256: Option<String>,
}

impl GitHttp {
    /// `api` is the API's bound address (an unspecified one, such as
    /// 0.0.0.0, is reached on loopback). The hook runs the current
    /// executable: `wpaas server` is the `wpaas` binary.
    pub fn new(api: SocketAddr) -> Result<Self> {
        let exe = std::env::current_exe().context("could not find the wpaas executable")?;
        let ip = match api.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Ok(Self {
            api_url: format!("http://{}", SocketAddr::new(ip, api.port())),
            exe,
            setup: tokio::sync::Mutex::new(()),
            pushes: KeyedLock::default(),
            api_cert_sha256: None,
        })
    }

    /// The API serves HTTPS with the certificate whose SHA-256 is
    /// `cert_sha256`: the hook calls it over https and pins it.
    pub fn with_tls(mut self, cert_sha256: String) -> Self {
        self.api_url = self.api_url.replacen("http://", "https://", 1);
        self.api_cert_sha256 = Some(cert_sha256);
        self
    }

    /// Whether `path` belongs to git rather than to the JSON API.
    pub fn handles(path: &str) -> bool {
        path.starts_with(PATH_PREFIX)
    }

    /// Serves one git request: checks the token (HTTP Basic, any user name),
    /// the app, and hands the request to `git http-backend`.
    pub async fn handle(
        &self,
        platform: &Platform,
        token: &str,
        req: hyper::Request<Incoming>,
    ) -> hyper::Response<BoxBody> {
        let target = split_path(req.uri().path());
        let Some(user) = authorized_user(req.headers(), token) else {
            let app = target.as_ref().map_or("APP", |(app, _)| app.as_str());
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                &format!("wpaas: missing or invalid API token; run `wpaas git:remote -a {app}` in your repository to set up credentials"),
            );
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"wpaas\""),
            );
            return response;
        };
        let Some((app, rest)) = target else {
            return text(
                StatusCode::NOT_FOUND,
                "wpaas: git repositories are at /git/APP.git",
            );
        };
        if platform.store().app(&app).is_err() {
            return text(
                StatusCode::NOT_FOUND,
                &format!("wpaas: no such app {app:?}; create it with `wpaas apps:create {app}`"),
            );
        }
        let result = async {
            let repo = platform.store().git_dir(&app)?;
            self.ensure_repo(&repo).await?;
            // A second push waits here, before git looks at the branch.
            let push = match rest.as_str() {
                "/git-receive-pack" => Some(self.push_lock(&app).await),
                _ => None,
            };
            let limit = push.as_ref().map(|_| platform.max_upload());
            self.run_backend(&repo, &app, &rest, &user, token, push, limit, req)
                .await
        }
        .await;
        result.unwrap_or_else(|err| {
            tracing::error!(app, "git request failed: {err:#}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("wpaas: {err:#}"),
            )
        })
    }

    /// Creates the app's bare repository on first use and (re)writes its
    /// hook, which names this server's binary.
    async fn ensure_repo(&self, repo: &Path) -> Result<()> {
        let _guard = self.setup.lock().await;
        if !repo.join("HEAD").is_file() {
            // Made aside and renamed into place, so a half-made repository
            // is never served.
            let parent = repo.parent().context("repository path has no parent")?;
            tokio::fs::create_dir_all(parent).await?;
            let tmp = parent.join(format!(
                ".tmp-{}",
                super::token::random_hex(8).context("random name")?
            ));
            let output = Command::new("git")
                .args(["init", "--quiet", "--bare", "--initial-branch=main"])
                .arg(&tmp)
                .stdin(Stdio::null())
                .output()
                .await
                .context("could not run git; is git installed on the server?")?;
            if !output.status.success() {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
                bail!(
                    "git init failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            tokio::fs::rename(&tmp, repo)
                .await
                .with_context(|| format!("could not create {}", repo.display()))?;
        }
        let hook = repo.join("hooks/pre-receive");
        let script = hook_script(&self.exe);
        // tokio::fs: off the async workers, like everything on disk here.
        if tokio::fs::read_to_string(&hook).await.ok().as_deref() != Some(script.as_str()) {
            use std::os::unix::fs::PermissionsExt;
            let tmp = hook.with_extension("tmp");
            tokio::fs::create_dir_all(repo.join("hooks")).await?;
            tokio::fs::write(&tmp, &script).await?;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).await?;
            tokio::fs::rename(&tmp, &hook).await?;
        }
        Ok(())
    }

    /// Waits for other pushes to `app` to finish.
    async fn push_lock(&self, app: &str) -> KeyGuard {
        self.pushes.lock(app).await
    }

    /// Runs `git http-backend` for one request, streaming the request body
    /// in and the response out (pushes can be large, and the build output
    /// must reach the pusher while it happens). `push` is released when
    /// http-backend exits. A request body over `limit` bytes stops git.
    #[allow(clippy::too_many_arguments)]
    async fn run_backend(
        &self,
        repo: &Path,
        app: &str,
        rest: &str,
        user: &str,
        token: &str,
        push: Option<tokio::sync::OwnedMutexGuard<()>>,
        limit: Option<u64>,
        req: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<BoxBody>> {
        let (parts, body) = req.into_parts();
        let root = repo.parent().context("repository path has no parent")?;
        let mut cmd = Command::new("git");
        cmd.arg("http-backend").env_clear();
        for name in INHERITED_ENV {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        let header = |name: http::header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        cmd.env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REQUEST_METHOD", parts.method.as_str())
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", format!("/{app}.git{rest}"))
            .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
            // http-backend allows pushes from an authenticated user only.
            .env("REMOTE_USER", user)
            .env("WPAAS_API", &self.api_url)
            .env("WPAAS_TOKEN", token)
            .env("WPAAS_APP", app);
        if let Some(pin) = &self.api_cert_sha256 {
            cmd.env("WPAAS_API_CERT_SHA256", pin);
        }
        if let Some(value) = header(http::header::CONTENT_TYPE) {
            cmd.env("CONTENT_TYPE", value);
        }
        if let Some(value) = header(http::header::CONTENT_LENGTH) {
            cmd.env("CONTENT_LENGTH", value);
        }
        // git gzips large request bodies; http-backend inflates them itself.
        if let Some(value) = header(http::header::CONTENT_ENCODING) {
            cmd.env("HTTP_CONTENT_ENCODING", value);
        }
        if let Some(value) = header(http::header::HeaderName::from_static("git-protocol")) {
            cmd.env("HTTP_GIT_PROTOCOL", &value)
                .env("GIT_PROTOCOL", value);
        }
        // Its own process group, so that stopping an oversized push stops
        // receive-pack and index-pack with it.
        cmd.process_group(0);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not run git http-backend; is git installed on the server?")?;
        let stdin = child.stdin.take().context("stdin is piped")?;
        let mut stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;

        let copy = tokio::spawn(copy_body(body, stdin, limit));
        // Set once git is over: whether the push was stopped for its size
        // (and what it left removed).
        let (outcome_tx, outcome) = tokio::sync::watch::channel(None::<bool>);
        let log_app = app.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(app = log_app, "git http-backend: {line}");
            }
        });
        let log_app = app.to_string();
        let objects = repo.join("objects");
        tokio::spawn(async move {
            let mut stopped = false;
            let status = tokio::select! {
                status = child.wait() => status,
                Ok(Err((sent, stdin))) = copy => {
                    stopped = true;
                    tracing::warn!(app = log_app, "git push stopped after {sent} bytes: over the upload limit");
                    if let Some(pid) = child.id() {
                        let _ = Command::new("kill")
                            .args(["-s", "TERM", "--", &format!("-{pid}")])
                            .status()
                            .await;
                    }
                    let status = child.wait().await;
                    drop(stdin);
                    // The objects received so far, in receive-pack's
                    // quarantine; no other push runs (we hold its lock).
                    remove_quarantine(&objects).await;
                    status
                }
            };
            match status {
                Ok(status) if !status.success() => {
                    tracing::warn!(app = log_app, "git http-backend exited with {status}")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(app = log_app, "git http-backend: {err}"),
            }
            let _ = outcome_tx.send(Some(stopped));
            drop(push);
        });

        let (head, rest) = match read_cgi_head(&mut stdout).await {
            Ok(head) => head,
            Err(_) if limit.is_some() && was_stopped(outcome.clone()).await => {
                // Stopped before git answered anything. git shows a
                // refusal's words only from a receive-pack answer (a bare
                // 413 reads `RPC failed; HTTP 413`), so answer as
                // receive-pack would, with the reason on the error band.
                let message = too_big_message(limit.unwrap_or_default());
                return Ok(refused_push(&message));
            }
            Err(err) => return Err(err),
        };
        let mut response = hyper::Response::builder();
        for line in head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                bail!("git http-backend wrote a bad header line {line:?}");
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                let code = value.split_whitespace().next().unwrap_or_default();
                response = response.status(
                    code.parse::<StatusCode>()
                        .with_context(|| format!("bad CGI status {value:?}"))?,
                );
            } else {
                response = response.header(name.trim(), value);
            }
        }
        let refusal = limit.map(|limit| (outcome, limit));
        Ok(response.body(stream_rest(rest, stdout, refusal))?)
    }
}

/// A receive-pack answer that refuses the push with `message`, which git
/// prints as `remote: MESSAGE` and fails the push.
fn refused_push(message: &str) -> hyper::Response<BoxBody> {
    let mut response = hyper::Response::new(crate::respond::stream_body(futures::stream::iter([
        cgi::fatal_sideband(message),
    ])));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-git-receive-pack-result"),
    );
    response
}

/// The `pre-receive` hook: runs `EXE git-hook pre-receive`.
fn hook_script(exe: &Path) -> String {
    let exe = exe.display().to_string().replace('\'', r"'\''");
    format!(
        "#!/bin/sh\n\
         # Installed by wpaas server: a push to main or master is built and\n\
         # released before the branch moves; a failed build rejects the push.\n\
         exec '{exe}' git-hook pre-receive\n"
    )
}

/// `/git/APP.git/REST` (or `/git/APP/REST`) → (APP, `/REST`), for a valid
/// app name and a REST without `.` or `..` segments only, so that a request
/// names nothing on disk but a file in APP's repository.
fn split_path(path: &str) -> Option<(String, String)> {
    let path = path.strip_prefix(PATH_PREFIX)?;
    let (repo, rest) = match path.find('/') {
        Some(i) => path.split_at(i),
        None => (path, ""),
    };
    let app = repo.strip_suffix(".git").unwrap_or(repo);
    validate_app_name(app).ok()?;
    if rest.split('/').any(|s| matches!(s, "." | "..")) {
        return None;
    }
    Some((app.to_string(), rest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_a_valid_app() {
        let split = |p| split_path(p);
        assert_eq!(
            split("/git/hello.git/info/refs"),
            Some(("hello".into(), "/info/refs".into()))
        );
        assert_eq!(
            split("/git/hello/git-receive-pack"),
            Some(("hello".into(), "/git-receive-pack".into()))
        );
        assert_eq!(split("/git/hello.git"), Some(("hello".into(), "".into())));
        assert_eq!(split("/git/../db/info/refs"), None);
        assert_eq!(split("/git/hello.git/../other.git/info/refs"), None);
        assert_eq!(split("/git/hello.git/./info/refs"), None);
        assert_eq!(split("/git/Hello.git/info/refs"), None);
        assert_eq!(split("/apps"), None);
    }

    #[test]
    fn the_hook_quotes_the_binary_path() {
        let script = hook_script(Path::new("/opt/it's here/wpaas"));
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.ends_with("exec '/opt/it'\\''s here/wpaas' git-hook pre-receive\n"));
    }
}
