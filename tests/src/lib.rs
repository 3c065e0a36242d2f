//! The end-to-end harness: builds the real `wpaas` binary and the guest
//! examples once per test process, starts servers on port 0 with a temporary
//! `WPAAS_HOME`, and stops them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use wpaas_api::apps::AppInfo;
use wpaas_api::ps::{ProcessType, Replica};
use wpaas_api::releases::Release;
use wpaas_api::ErrorBody;

/// A real etcd for the cluster tests: the host's own test launcher
/// (std only), compiled in from its file rather than through a dependency
/// on wpaas-host, which would build the host a second time with this
/// crate's dependency features.
#[path = "../../host/src/etcd/testing.rs"]
pub mod etcd;
pub mod golden;
pub mod load;
pub mod pending;
pub mod prometheus;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The release `wpaas` binary, built (or found up to date) once.
pub fn wpaas_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = workspace_root();
        let status = Command::new(cargo())
            .args(["build", "--release", "-p", "wpaas", "--bin", "wpaas"])
            .current_dir(&root)
            .status()
            .expect("could not run cargo");
        assert!(status.success(), "building the wpaas binary failed");
        root.join("target/release/wpaas")
    })
}

/// Where the guest examples are built.
pub fn examples_target_dir() -> PathBuf {
    workspace_root().join("target/examples")
}

/// The caches every test server shares (`wpaas server --cache-dir` and
/// `--build-cache-dir` point under it), so that a module is compiled and
/// a crate's dependencies are built once per checkout, not once per test.
pub fn shared_cache_dir() -> PathBuf {
    workspace_root().join("target/e2e-cache")
}

/// Runs `command` with `stdin` written to its standard input; its output.
pub fn output_with_stdin(command: &mut Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not run the command");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("could not write its stdin");
    child.wait_with_output().expect("could not wait for it")
}

/// A command's stdout and stderr, for messages and assertions.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `.wasm` of example `name` (hello, echo, hostile, raw-echo,
/// wagi-hello, worker), all built once per process by `examples/build.sh`.
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let out = Command::new("bash")
            .arg(root.join("examples/build.sh"))
            .env("CARGO_TARGET_DIR", examples_target_dir())
            .current_dir(&root)
            .output()
            .expect("could not run examples/build.sh");
        assert!(
            out.status.success(),
            "building the examples failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let target = if name == "wagi-hello" || name == "worker" {
        "wasm32-wasip1"
    } else {
        "wasm32-wasip2"
    };
    let path = examples_target_dir()
        .join(target)
        .join("release")
        .join(format!("{name}.wasm"));
    assert!(path.exists(), "example {} was not built", path.display());
    path
}

/// A running `wpaas up` process.
pub struct UpServer {
    child: Child,
    /// The address it serves on.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Reads stderr into `stderr` until the process closes it.
    stderr_reader: Option<JoinHandle<()>>,
    _home: Option<tempfile::TempDir>,
}

impl UpServer {
    /// Starts `wpaas up TARGET --listen 127.0.0.1:0 ARGS…` with a fresh
    /// temporary WPAAS_HOME.
    pub fn start(target: &Path, args: &[&str]) -> Result<Self> {
        let home = tempfile::tempdir()?;
        let mut server = Self::start_in(home.path(), target, args)?;
        server._home = Some(home);
        Ok(server)
    }

    /// Like [`UpServer::start`], with environment variables for the server
    /// (engine-wide settings such as `WPAAS_BUFFER_BUDGET`).
    pub fn start_with_env(target: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let home = tempfile::tempdir()?;
        let mut server = Self::launch(home.path(), target, args, env)?;
        server._home = Some(home);
        Ok(server)
    }

    /// Like [`UpServer::start`] but with the given WPAAS_HOME, which the
    /// caller keeps (to start a second server on the same state).
    pub fn start_in(home: &Path, target: &Path, args: &[&str]) -> Result<Self> {
        Self::launch(home, target, args, &[])
    }

    fn launch(home: &Path, target: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut child = Command::new(wpaas_bin())
            .envs(env.iter().copied())
            .arg("up")
            .arg(target)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("WPAAS_HOME", home)
            // Crates built by `wpaas up` share the examples' dependencies.
            .env("CARGO_TARGET_DIR", examples_target_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not start wpaas up")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err_pipe = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line)? == 0 || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                // The reader ends when the dead process's pipe closes.
                let _ = reader.join();
                bail!(
                    "wpaas up exited before serving; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
            if let Some(addr) = parse_serving_line(&line) {
                break addr;
            }
        };
        drain(stdout);
        Ok(Self {
            child,
            addr,
            stderr,
            stderr_reader: Some(reader),
            _home: None,
        })
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM (as an init system or Ctrl-C would).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `timeout` for the process to exit; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        try_eventually(timeout, || match self.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ => Err("still running".into()),
        })
        .ok()
    }

    /// Stops the server (SIGTERM, then SIGKILL) and returns all it wrote
    /// to stderr.
    pub fn stop(mut self) -> String {
        self.terminate();
        if self.wait_exit(Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader ends when the exited process's pipe closes.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr()
    }
}

impl Drop for UpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keeps reading a child's stdout so it never blocks on a full pipe.
fn drain(mut stdout: BufReader<std::process::ChildStdout>) {
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stdout.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
}

/// Polls `probe` every 50 ms until it gives `Ok`; after `timeout` fails
/// the test with the last `Err` (say what was seen, not only what was
/// wanted: the state at the deadline is what explains a failure).
pub fn eventually<T>(timeout: Duration, probe: impl FnMut() -> Result<T, String>) -> T {
    try_eventually(timeout, probe)
        .unwrap_or_else(|seen| panic!("timed out after {timeout:?}: {seen}"))
}

/// Like [`eventually`], but the last `Err` at the deadline is returned,
/// not a failed test: for waits whose timeout is an answer too.
pub fn try_eventually<T>(
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return Ok(value),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Reads `bytes` as the API type `T`; a body of another shape fails the
/// test, quoting it.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).unwrap_or_else(|err| {
        panic!(
            "not a {}: {err}: {}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(bytes)
        )
    })
}

/// The replicas of process type `kind` in a `ps` listing; none when the
/// type is not listed (a one-off `run` type appears only while one runs).
pub fn replicas<'a>(ps: &'a [ProcessType], kind: &str) -> &'a [Replica] {
    ps.iter()
        .find(|p| p.kind == kind)
        .map(|p| p.replicas.as_slice())
        .unwrap_or_default()
}

/// `len` deterministic bytes that look random: they do not compress, so a
/// pack or a body is as large as they are.
pub fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Finds the address in `Serving NAME on http://ADDR (...)`.
pub fn parse_serving_line(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("Serving ")?;
    let url = rest.split(" on http://").nth(1)?;
    url.split_whitespace().next()?.parse().ok()
}

/// A blocking HTTP client with a generous timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .expect("http client")
}

/// A running `wpaas server` with its own WPAAS_HOME.
pub struct Server {
    child: Child,
    /// The router's address.
    pub router: SocketAddr,
    /// The API's address.
    pub api: SocketAddr,
    /// Its WPAAS_HOME.
    pub home: PathBuf,
    /// "https" when started with --tls-cert, else "http".
    pub scheme: &'static str,
    /// Whether it uses the shared caches ([`shared_cache_dir`]).
    shared_caches: bool,
}

impl Server {
    /// Starts `wpaas server` on port 0 (router and API) with `home`. Its
    /// stderr is appended to `home/server-stderr.log` ([`Server::stderr`]).
    /// Compiled code and build caches are the test run's shared ones
    /// ([`shared_cache_dir`]); see [`Server::start_with_own_caches`].
    pub fn start(home: &Path) -> Result<Self> {
        Self::start_with(home, &[])
    }

    /// Like [`Server::start`], with more `wpaas server` arguments.
    pub fn start_with(home: &Path, args: &[&str]) -> Result<Self> {
        Self::start_with_env(home, args, &[])
    }

    /// Like [`Server::start_with`], with environment variables for the
    /// server (engine-wide settings such as `WPAAS_MAX_INSTANCES`).
    pub fn start_with_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut command = Command::new(wpaas_bin());
        command.arg("server").envs(env.iter().copied());
        Self::spawn(home, with_shared_caches(command), args, true)
    }

    /// Like [`Server::start_with`], with the compiled code and build
    /// caches in `home` (the server's defaults), for tests of those caches.
    pub fn start_with_own_caches(home: &Path, args: &[&str]) -> Result<Self> {
        Self::start_with_own_caches_and_env(home, args, &[])
    }

    /// Like [`Server::start_with_own_caches`], with environment variables
    /// for the server.
    pub fn start_with_own_caches_and_env(
        home: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let mut command = Command::new(wpaas_bin());
        command.arg("server").envs(env.iter().copied());
        Self::spawn(home, command, args, false)
    }

    /// Like [`Server::start_with`], under `ulimit -n open_files` (soft and
    /// hard: the server cannot raise it).
    pub fn start_with_open_files(home: &Path, open_files: u32, args: &[&str]) -> Result<Self> {
        let mut command = Command::new("bash");
        command
            .args([
                "-c",
                &format!("ulimit -n {open_files} && exec \"$0\" \"$@\""),
            ])
            .arg(wpaas_bin())
            .arg("server");
        Self::spawn(home, with_shared_caches(command), args, true)
    }

    fn spawn(
        home: &Path,
        mut command: Command,
        args: &[&str],
        shared_caches: bool,
    ) -> Result<Self> {
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(home.join("server-stderr.log"))?;
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(args)
            .env("WPAAS_HOME", home)
            .env("CARGO_TARGET_DIR", examples_target_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("could not start wpaas server")?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (mut router, mut api, mut scheme) = (None, None, "http");
        let mut line = String::new();
        while router.is_none() || api.is_none() {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                let _ = child.kill();
                bail!("wpaas server exited before listening");
            }
            let addr = |prefix: &str| {
                let rest = line.trim().strip_prefix(prefix)?;
                let (url_scheme, addr) = rest.split_once("://")?;
                Some((url_scheme == "https", addr.parse::<SocketAddr>().ok()?))
            };
            if let Some((https, addr)) = addr("Router listening on ") {
                router = Some(addr);
                if https {
                    scheme = "https";
                }
            }
            api = api.or(addr("API listening on ").map(|(_, addr)| addr));
        }
        drain(stdout);
        Ok(Self {
            child,
            router: router.expect("set"),
            api: api.expect("set"),
            home: home.to_path_buf(),
            scheme,
            shared_caches,
        })
    }

    /// Runs `wpaas ARGS…` against this server in `dir`.
    pub fn cli(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        self.command(dir, args)
            .output()
            .expect("could not run wpaas")
    }

    /// `wpaas ARGS…` against this server in `dir`, to spawn.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(wpaas_bin());
        command
            .args(args)
            .current_dir(dir)
            .env("WPAAS_HOME", &self.home)
            .env("WPAAS_API", format!("{}://{}", self.scheme, self.api))
            .env("CARGO_TARGET_DIR", examples_target_dir())
            .stdin(Stdio::null());
        command
    }

    /// `git ARGS…` in the checkout `dir` as a user of this server runs it:
    /// its own `home` (no global git config), a fixed author, and the
    /// environment `wpaas git-credential` (run by git) finds the token in.
    pub fn git(&self, dir: &Path, home: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(dir)
            .env("HOME", home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("WPAAS_HOME", &self.home)
            .env("WPAAS_API", format!("{}://{}", self.scheme, self.api))
            .env_remove("WPAAS_TOKEN")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `wpaas ARGS…` in `dir` and insists it succeeds; its stdout.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.cli(dir, args);
        assert!(out.status.success(), "wpaas {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `wpaas ARGS…` (a command given `--json`) in `dir`, insists it
    /// succeeds, and reads its stdout as the API type `T`.
    pub fn cli_json<T: DeserializeOwned>(&self, dir: &Path, args: &[&str]) -> T {
        parse(self.ok(dir, args).as_bytes())
    }

    /// `app`'s process types as `wpaas ps --json` prints them.
    pub fn ps(&self, app: &str) -> Vec<ProcessType> {
        self.cli_json(Path::new("/"), &["ps", "-a", app, "--json"])
    }

    /// `app`'s releases, newest first, as `wpaas releases --json` prints
    /// them.
    pub fn releases(&self, app: &str) -> Vec<Release> {
        self.cli_json(Path::new("/"), &["releases", "-a", app, "--json"])
    }

    /// Requests running or queued on `app`'s web replicas now (`wpaas ps`).
    pub fn in_flight(&self, app: &str) -> u64 {
        replicas(&self.ps(app), "web")
            .iter()
            .filter_map(|r| r.in_flight)
            .sum()
    }

    /// A request to the API at `path`, with the server's token.
    pub fn api_request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        client()
            .request(method, format!("{}://{}{path}", self.scheme, self.api))
            .bearer_auth(self.token())
    }

    /// GETs `path` from the API and reads the answer as `T`; a failed
    /// answer fails the test with its [`ErrorBody`].
    pub fn api_get<T: DeserializeOwned>(&self, path: &str) -> T {
        let response = self
            .api_request(reqwest::Method::GET, path)
            .send()
            .unwrap_or_else(|err| panic!("GET {path}: {err}"));
        let status = response.status();
        let body = response.bytes().expect("the API answers with a body");
        if !status.is_success() {
            panic!(
                "GET {path}: {status} {:?}",
                ErrorBody::from_response(status.as_u16(), &body)
            );
        }
        parse(&body)
    }

    /// `GET /apps/APP`: the app, its serving release and its URL.
    pub fn app_info(&self, app: &str) -> AppInfo {
        self.api_get(&format!("/apps/{app}"))
    }

    /// The API token (from `home/token`).
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.join("token"))
            .expect("the server wrote its token")
            .trim()
            .to_string()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every app's log lines so far as `APP app[PROCESS]: MESSAGE`, read
    /// from the log files in WPAAS_HOME/logs (written up to ~20 ms after
    /// the line: poll for a line you wait for).
    pub fn logs(&self) -> String {
        let mut all = String::new();
        let Ok(dir) = std::fs::read_dir(self.home.join("logs")) else {
            return all;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(app) = name.strip_suffix(".log") else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                if let Some((_, rest)) = line.split_once(' ') {
                    all.push_str(&format!("{app} {rest}\n"));
                }
            }
        }
        all
    }

    /// `app`'s log file as it is: `TIME app[PROCESS]: MESSAGE` lines.
    pub fn app_log(&self, app: &str) -> String {
        std::fs::read_to_string(self.home.join("logs").join(format!("{app}.log")))
            .unwrap_or_default()
    }

    /// The host directory `app`'s builds see as their cache (`/cache`,
    /// `CACHE_DIR`).
    pub fn build_cache(&self, app: &str) -> PathBuf {
        if self.shared_caches {
            shared_cache_dir().join("build").join(app)
        } else {
            self.home.join("cache/build").join(app)
        }
    }

    /// GET `path` on `app` through the router.
    pub fn get(&self, app: &str, path: &str) -> reqwest::blocking::Response {
        client()
            .get(format!("http://{}{path}", self.router))
            .header("host", format!("{app}.localhost"))
            .send()
            .expect("router answers")
    }

    /// What the server has written to stderr so far (over restarts).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.home.join("server-stderr.log")).unwrap_or_default()
    }

    /// Kills the server without warning (as a crash or `kill -9` would).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points a `wpaas server` command at the shared caches.
fn with_shared_caches(mut command: Command) -> Command {
    let shared = shared_cache_dir();
    command
        .env("WPAAS_CACHE_DIR", shared.join("compiled"))
        .env("WPAAS_BUILD_CACHE_DIR", shared.join("build"));
    command
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_serving_line() {
        let line = "Serving hello on http://127.0.0.1:4321 (also http://hello.localhost:4321)\n";
        assert_eq!(
            parse_serving_line(line),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(parse_serving_line("Compiling…"), None);
    }
}
