//! A real etcd for tests: [`EtcdServer`] starts `/usr/bin/etcd` (or `etcd`
//! on PATH) on free loopback ports with a data directory of its own, waits
//! until it answers, and stops it on drop. [`EtcdServer::stop`] and
//! [`EtcdServer::start`] take it down and bring it back on the same ports
//! and data, for tests of an outage.
//!
//! etcd runs under a small shell that holds a pipe from this process: when
//! the test process ends, however it ends, the pipe closes and the shell
//! kills etcd and removes its directory. So [`shared`], which lives in a
//! static and is never dropped, leaves nothing behind either.
//!
//! Compiled always (hidden from the docs); the e2e crate compiles this file
//! into its harness too (`wpaas_tests::etcd`), so it uses only std.
#![doc(hidden)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long etcd may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The shell etcd runs under: it waits for a line (or end of input) on its
/// stdin, then kills etcd; unless the line was `keep` it removes the
/// directory too. `$1` is the directory, the rest the command.
const SUPERVISOR: &str = r#"dir="$1"; shift
"$@" >>"$dir/etcd.log" 2>&1 </dev/null &
pid=$!
read -r line
kill "$pid" 2>/dev/null; wait "$pid"
[ "$line" = keep ] || rm -rf "$dir"
"#;

/// One etcd process (member `default`, a cluster of one).
pub struct EtcdServer {
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    running: Option<(Child, ChildStdin)>,
}

impl std::fmt::Debug for EtcdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdServer")
            .field("endpoint", &self.endpoint())
            .field("dir", &self.dir)
            .finish()
    }
}

/// One etcd for the whole test binary, started on first use. Tests share
/// it and keep apart by key prefix.
pub fn shared() -> &'static EtcdServer {
    static SERVER: OnceLock<EtcdServer> = OnceLock::new();
    SERVER.get_or_init(EtcdServer::start_new)
}

/// A key prefix no other test of this process uses: `/test/<pid>-<n>-<name>/`.
pub fn unique_prefix(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "/test/{}-{}-{name}/",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The etcd binary: `/usr/bin/etcd`, else `etcd` on PATH.
pub fn etcd_binary() -> PathBuf {
    let debian = Path::new("/usr/bin/etcd");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        PathBuf::from("etcd")
    }
}

impl EtcdServer {
    /// Starts a new etcd with an empty data directory and waits until it
    /// answers. Panics (it is for tests) with etcd's log if it does not.
    pub fn start_new() -> EtcdServer {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "wpaas-etcd-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create etcd's directory");
        let mut server = EtcdServer {
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            running: None,
        };
        server.start();
        server
    }

    /// `http://127.0.0.1:<client port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// [`EtcdServer::endpoint`] as the list `Etcd::connect` takes.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    /// Whether etcd is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts etcd (again) on the same ports and data, and waits until it
    /// answers. No-op if it runs.
    pub fn start(&mut self) {
        if self.running.is_some() {
            return;
        }
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = self.endpoint();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&self.dir)
            .arg(etcd_binary())
            .args(["--name", "default", "--data-dir"])
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .args(["--log-level", "warn", "--logger", "zap"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run sh to start etcd");
        let stdin = child.stdin.take().expect("a piped stdin");
        self.running = Some((child, stdin));
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.healthy() {
            if Instant::now() > deadline {
                panic!(
                    "etcd did not answer at {} within {START_TIMEOUT:?}; its log:\n{}",
                    self.endpoint(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops etcd, keeping its data (see [`EtcdServer::start`]).
    pub fn stop(&mut self) {
        self.halt(true);
    }

    /// Stops and starts etcd, on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// etcd's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    fn halt(&mut self, keep: bool) {
        if let Some((mut child, mut stdin)) = self.running.take() {
            if keep {
                let _ = stdin.write_all(b"keep\n");
            }
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Whether etcd's `/health` says it is.
    fn healthy(&self) -> bool {
        let addr = ("127.0.0.1", self.client_port);
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.contains("\"health\":\"true\"")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.halt(false);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}
