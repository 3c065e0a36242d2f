//! Zero downtime: clients keep hammering an app over keep-alive connections
//! while it goes through ten consecutive deploys and config changes. No
//! request may fail, and every response must come wholly from one release.
//!
//! The guest is a WAGI module written in WAT, in two code versions (`code-a`,
//! `code-b`). It answers with a release tag `CODE/GREETING` in an
//! `X-Release` header *and* on each of the body's [`BODY_LINES`] lines, so a
//! response stitched from two releases (or from a release that was half
//! swapped in) shows as a disagreement between them.
//!
//! The client is raw HTTP/1.1 over TCP rather than a pooling HTTP library, so
//! a dropped or reset connection cannot be hidden by a silent retry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wpaas_tests::Server;

/// Client threads, each with its own keep-alive connection.
const CLIENTS: usize = 8;
/// How many times the guest repeats the release tag in its body.
const BODY_LINES: usize = 256;
/// How long the clients keep going after the last change went live. This
/// and [`PAUSE`] are slept: traffic running through the changes for a
/// while is the behaviour under test, not a wait for a condition.
const TAIL: Duration = Duration::from_millis(500);
/// Load between changes, so each release serves a while before the next.
const PAUSE: Duration = Duration::from_millis(300);
/// Everything (all changes) must be done within this.
const BUDGET: Duration = Duration::from_secs(50);

/// A WAGI module answering `X-Release: CODE/GREETING` and the same tag on
/// each of [`BODY_LINES`] body lines (`GREETING` is `unset` when missing).
/// The whole response is assembled in memory and written with `fd_write`
/// until done (WASI may write fewer bytes than asked).
fn tagged_guest_wat(code: &str) -> String {
    let head = "Content-Type: text/plain\\nX-Release: ";
    let head_len = "Content-Type: text/plain\nX-Release: ".len();
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  ;; 0: constants; 256: environ sizes; 272: iovec; 4096: environ;
  ;; 65536: the response.
  (memory (export "memory") 4)
  (data (i32.const 0) "GREETING=")
  (data (i32.const 16) "unset")
  (data (i32.const 32) "/\n")
  (data (i32.const 48) "{code}")
  (data (i32.const 64) "{head}")
  (global $out (mut i32) (i32.const 65536))

  (func $append (param $src i32) (param $len i32)
    (memory.copy (global.get $out) (local.get $src) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))

  ;; Whether the NUL-terminated string at $p starts with "GREETING=".
  (func $is_greeting (param $p i32) (result i32)
    (local $i i32)
    (block $differs
      (loop $next
        (br_if $differs
          (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i)))
                  (i32.load8_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (i32.const 9))))
      (return (i32.const 1)))
    (i32.const 0))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end
      (loop $next
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func (export "_start")
    (local $count i32) (local $i i32) (local $p i32)
    (local $value i32) (local $value_len i32)
    (local $tag i32) (local $tag_len i32) (local $left i32)
    (if (call $environ_sizes_get (i32.const 256) (i32.const 260)) (then unreachable))
    (local.set $count (i32.load (i32.const 256)))
    (if (call $environ_get
          (i32.const 4096)
          (i32.add (i32.const 4096) (i32.shl (local.get $count) (i32.const 2))))
      (then unreachable))
    (local.set $value (i32.const 16))
    (local.set $value_len (i32.const 5))
    (block $scanned
      (loop $scan
        (br_if $scanned (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $p (i32.load (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 2)))))
        (if (call $is_greeting (local.get $p))
          (then
            (local.set $value (i32.add (local.get $p) (i32.const 9)))
            (local.set $value_len (call $strlen (local.get $value)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))

    (call $append (i32.const 64) (i32.const {head_len}))
    (local.set $tag (global.get $out))
    (call $append (i32.const 48) (i32.const {code_len}))
    (call $append (i32.const 32) (i32.const 1))
    (call $append (local.get $value) (local.get $value_len))
    (local.set $tag_len (i32.sub (global.get $out) (local.get $tag)))
    (call $append (i32.const 33) (i32.const 1))
    (call $append (i32.const 33) (i32.const 1))
    (local.set $i (i32.const 0))
    (loop $line
      (call $append (local.get $tag) (local.get $tag_len))
      (call $append (i32.const 33) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $line (i32.lt_u (local.get $i) (i32.const {BODY_LINES}))))

    (local.set $p (i32.const 65536))
    (local.set $left (i32.sub (global.get $out) (i32.const 65536)))
    (loop $write
      (i32.store (i32.const 272) (local.get $p))
      (i32.store (i32.const 276) (local.get $left))
      (if (call $fd_write (i32.const 1) (i32.const 272) (i32.const 1) (i32.const 280))
        (then unreachable))
      (local.set $p (i32.add (local.get $p) (i32.load (i32.const 280))))
      (local.set $left (i32.sub (local.get $left) (i32.load (i32.const 280))))
      (br_if $write (i32.gt_s (local.get $left) (i32.const 0)))))
)
"#,
        code_len = code.len(),
    )
}

/// One change to the app and the release tag it must lead to.
struct Change {
    args: Vec<String>,
    dir: &'static str,
    tag: String,
}

/// What one client saw for one request.
struct Seen {
    sent: Instant,
    done: Instant,
    /// Index of the release in the list of released tags.
    release: usize,
}

/// A keep-alive HTTP/1.1 connection to the router, reopened only when the
/// server asks for it with `Connection: close`.
struct Conn {
    addr: SocketAddr,
    host: String,
    stream: Option<BufReader<TcpStream>>,
    opened: usize,
}

/// A response read off the wire.
struct Answer {
    status: u16,
    release_header: Option<String>,
    body: Vec<u8>,
}

impl Conn {
    fn get(&mut self, path: &str) -> Result<Answer, String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
            stream.set_nodelay(true).ok();
            stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
            self.stream = Some(BufReader::new(stream));
            self.opened += 1;
        }
        let reader = self.stream.as_mut().expect("connected");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let answer = read_response(reader);
        match &answer {
            Ok((_, keep_alive)) if *keep_alive => {}
            _ => self.stream = None,
        }
        answer.map(|(answer, _)| answer)
    }
}

/// Reads one HTTP/1.1 response (Content-Length or chunked body); also
/// whether the connection may be reused.
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<(Answer, bool), String> {
    let mut line = String::new();
    let read_line = |reader: &mut BufReader<TcpStream>, line: &mut String| {
        line.clear();
        match reader.read_line(line) {
            Ok(0) => Err("connection closed".to_string()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {e}")),
        }
    };
    read_line(reader, &mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let (mut length, mut chunked, mut keep_alive, mut release_header) = (None, false, true, None);
    loop {
        read_line(reader, &mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("bad header {header:?}"))?;
        let (name, value) = (name.to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
            "x-release" => release_header = Some(value.to_string()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    let read_exact = |reader: &mut BufReader<TcpStream>, body: &mut Vec<u8>, n: usize| {
        let start = body.len();
        body.resize(start + n, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| format!("body: {e}"))
    };
    if chunked {
        loop {
            read_line(reader, &mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let size =
                usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                read_line(reader, &mut line)?; // the empty trailer section
                break;
            }
            read_exact(reader, &mut body, size)?;
            read_line(reader, &mut line)?; // CRLF after the chunk
        }
    } else {
        let length = length.ok_or("response without Content-Length or chunking")?;
        read_exact(reader, &mut body, length)?;
    }
    let answer = Answer {
        status,
        release_header,
        body,
    };
    Ok((answer, keep_alive))
}

/// Checks one response: status 200, and the header and every body line
/// carry the same release tag, which must be one of `released`. Returns the
/// index of that release.
fn release_of(answer: &Answer, released: &[String]) -> Result<usize, String> {
    if answer.status != 200 {
        return Err(format!(
            "status {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    let header = answer.release_header.as_deref().ok_or("no X-Release")?;
    let body = std::str::from_utf8(&answer.body).map_err(|_| "body is not UTF-8")?;
    let lines: Vec<&str> = body.lines().collect();
    if lines.len() != BODY_LINES || lines.iter().any(|line| *line != header) {
        return Err(format!(
            "mixed response: X-Release {header:?}, body {body:?}"
        ));
    }
    released
        .iter()
        .position(|tag| tag == header)
        .ok_or_else(|| format!("release {header:?} was never released"))
}

/// Stops the clients when dropped, also when a change fails and panics.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn ten_deploys_and_config_changes_under_load_drop_nothing() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    for code in ["code-a", "code-b"] {
        let dir = src.path().join(code);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("app.wat"), tagged_guest_wat(code)).unwrap();
    }
    let server = Server::start(home.path()).unwrap();
    server.ok(&src.path().join("code-a"), &["deploy", "-a", "steady"]);

    // Ten changes: odd ones deploy the other code version, even ones set a
    // new GREETING. Every change leads to a tag not seen before.
    let mut released = vec!["code-a/unset".to_string()];
    let (mut code, mut greeting) = ("code-a", "unset".to_string());
    let changes: Vec<Change> = (1..=10)
        .map(|i| {
            let (args, dir) = if i % 2 == 1 {
                code = if code == "code-a" { "code-b" } else { "code-a" };
                (vec!["deploy".to_string()], code)
            } else {
                greeting = format!("r{i}");
                (
                    vec!["config:set".to_string(), format!("GREETING={greeting}")],
                    code,
                )
            };
            let tag = format!("{code}/{greeting}");
            released.push(tag.clone());
            Change { args, dir, tag }
        })
        .collect();
    let released = Arc::new(released);

    let stop = Arc::new(AtomicBool::new(false));
    let stop_clients = StopOnDrop(stop.clone());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, released) = (stop.clone(), released.clone());
            let mut conn = Conn {
                addr: server.router,
                host: "steady.localhost".into(),
                stream: None,
                opened: 0,
            };
            thread::spawn(move || {
                let (mut seen, mut failures) = (Vec::new(), Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let outcome = conn
                        .get("/")
                        .and_then(|answer| release_of(&answer, &released));
                    let done = Instant::now();
                    match outcome {
                        Ok(release) => seen.push(Seen {
                            sent,
                            done,
                            release,
                        }),
                        Err(e) => failures.push(e),
                    }
                }
                (seen, failures, conn.opened)
            })
        })
        .collect();

    let started = Instant::now();
    // (start, end) of each change's CLI run, by release index (1..=10).
    let mut windows = vec![(started, started)];
    for change in &changes {
        thread::sleep(PAUSE);
        let mut args: Vec<&str> = change.args.iter().map(String::as_str).collect();
        args.extend(["-a", "steady"]);
        let begin = Instant::now();
        server.ok(&src.path().join(change.dir), &args);
        windows.push((begin, Instant::now()));
        assert!(
            started.elapsed() < BUDGET,
            "the changes took longer than {BUDGET:?}"
        );
    }
    thread::sleep(TAIL);
    drop(stop_clients);

    let mut runs = Vec::new();
    let (mut connections, mut failures) = (0, Vec::new());
    for client in clients {
        let (seen, failed, opened) = client.join().unwrap();
        failures.extend(failed);
        connections += opened;
        runs.push(seen);
    }
    let total: usize = runs.iter().map(Vec::len).sum();
    let mut counts = vec![0usize; released.len()];
    for s in runs.iter().flatten() {
        counts[s.release] += 1;
    }
    eprintln!(
        "zero_downtime: {total} responses checked over {connections} connections in {:?}; \
         per release: {:?}",
        started.elapsed(),
        released.iter().zip(&counts).collect::<Vec<_>>()
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests failed, first: {}",
        failures.len(),
        failures.len() + total,
        failures[0]
    );
    for seen in &runs {
        // Per connection, releases only move forward.
        for pair in seen.windows(2) {
            assert!(
                pair[0].release <= pair[1].release,
                "a client went back from {} to {}",
                released[pair[0].release],
                released[pair[1].release]
            );
        }
        // Once a change's CLI returned, its release serves every request;
        // before the CLI started, nothing was served from it.
        for s in seen {
            for (release, (begin, end)) in windows.iter().enumerate().skip(1) {
                assert!(
                    s.sent < *end || s.release >= release,
                    "a request sent after {} went live got {}",
                    released[release],
                    released[s.release]
                );
                assert!(
                    s.done > *begin || s.release < release,
                    "a request answered before {} was asked for got it",
                    released[release]
                );
            }
        }
        let last = seen.last().expect("every client got answers");
        assert!(last.sent > windows[10].1, "a client stalled");
        assert_eq!(released[last.release], changes[9].tag);
    }
    for (tag, count) in released.iter().zip(&counts) {
        assert!(*count > 0, "release {tag} was never observed");
    }
    assert_eq!(connections, CLIENTS, "keep-alive connections were dropped");
}

#[test]
fn a_response_mixing_two_releases_is_caught() {
    let released = ["code-a/unset".to_string(), "code-b/r2".to_string()];
    let answer = |header: &str, lines: &[&str]| Answer {
        status: 200,
        release_header: Some(header.into()),
        body: lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into(),
    };
    let whole = vec!["code-b/r2"; BODY_LINES];
    assert_eq!(release_of(&answer("code-b/r2", &whole), &released), Ok(1));
    let mut mixed = whole.clone();
    mixed[BODY_LINES - 1] = "code-a/unset";
    assert!(release_of(&answer("code-b/r2", &mixed), &released).is_err());
    assert!(release_of(&answer("code-a/unset", &whole), &released).is_err());
    let never = vec!["code-a/r9"; BODY_LINES];
    assert!(release_of(&answer("code-a/r9", &never), &released).is_err());
    assert!(release_of(&answer("code-b/r2", &whole[1..]), &released).is_err());
}
