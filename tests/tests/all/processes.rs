//! Process types beyond `web`: workers, the release phase, one-off runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wpaas_tests::{example, replicas, text, wpaas_bin, Server};

/// Restart delays short enough that a test sees several crashes in a row
/// without waiting seconds: 50 ms, doubling up to 400 ms.
const FAST_BACKOFF: &[&str] = &[
    "--restart-backoff",
    "50ms",
    "--max-restart-backoff",
    "400ms",
];

/// hello.wasm as `web`, worker.wasm for the rest, with `procfile`.
fn app_source(dir: &Path, procfile: &str) {
    std::fs::copy(example("hello"), dir.join("hello.wasm")).unwrap();
    std::fs::copy(example("worker"), dir.join("worker.wasm")).unwrap();
    std::fs::write(dir.join("Procfile"), procfile).unwrap();
}

/// The waits of `process` between an exit and its next start, in order,
/// from an app's log file (`TIME app[PROCESS]: MESSAGE`).
fn restart_waits(log: &str, process: &str) -> Vec<Duration> {
    let prefix = format!("app[{process}]: ");
    let mut exited = None;
    let mut waits = Vec::new();
    for line in log.lines() {
        let Some((time, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some(message) = rest.strip_prefix(&prefix) else {
            continue;
        };
        let at = time_of_day(time);
        if message.starts_with("Process exited") {
            exited = Some(at);
        } else if message.starts_with("heartbeat 1 ") {
            if let Some(exit) = exited.take() {
                waits.push(at.saturating_sub(exit));
            }
        }
    }
    waits
}

/// `2026-01-01T12:34:56.789012Z` as the time since midnight.
fn time_of_day(rfc3339: &str) -> Duration {
    let clock = &rfc3339[rfc3339.find('T').expect("a date and a time") + 1..];
    let clock = clock.trim_end_matches('Z');
    let mut parts = clock.split(':');
    let mut next = || parts.next().expect("hh:mm:ss");
    let (h, m, s): (u64, u64, f64) = (
        next().parse().unwrap(),
        next().parse().unwrap(),
        next().parse().unwrap(),
    );
    Duration::from_secs(h * 3600 + m * 60) + Duration::from_secs_f64(s)
}

/// Waits up to 10 s for `check` to hold.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    wpaas_tests::eventually(Duration::from_secs(10), || {
        if check() {
            Ok(())
        } else {
            Err(format!("waiting for {what}"))
        }
    });
}

#[test]
fn workers_run_at_scale_restart_with_backoff_and_stop() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    app_source(src.path(), "web: hello.wasm\nworker: worker.wasm\n");
    let server = Server::start_with(home.path(), FAST_BACKOFF).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "jobs"]);
    assert!(out.status.success(), "{}", text(&out));
    // Like Heroku, only web runs by default.
    assert!(replicas(&server.ps("jobs"), "worker").is_empty());

    let out = server.cli(src.path(), &["ps:scale", "worker=2", "-a", "jobs"]);
    assert!(out.status.success(), "{}", text(&out));
    let beats = |name: &str| {
        server
            .logs()
            .lines()
            .filter(|l| l.starts_with(&format!("jobs app[{name}]: heartbeat")))
            .count()
    };
    eventually("heartbeats of both workers", || {
        beats("worker.1") >= 5 && beats("worker.2") >= 5
    });
    assert!(server
        .logs()
        .contains("jobs app[worker.2]: heartbeat 1 from worker.2 GREETING=unset"));
    let names: Vec<String> = replicas(&server.ps("jobs"), "worker")
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["worker.1", "worker.2"]);
    let human = text(&server.cli(src.path(), &["ps", "-a", "jobs"]));
    assert!(human.contains("=== worker (2): worker.wasm"), "{human}");
    assert!(human.contains("worker.1: up since"), "{human}");

    // Restarting web leaves the workers running: three more heartbeats
    // after it, and none of them a first one.
    let starts = || server.logs().matches("heartbeat 1 from worker.1").count();
    let before = starts();
    let out = server.cli(src.path(), &["ps:restart", "web", "-a", "jobs"]);
    assert!(out.status.success(), "{}", text(&out));
    let beats_after_restart = beats("worker.1");
    eventually("three heartbeats after the restart of web", || {
        beats("worker.1") >= beats_after_restart + 3
    });
    assert_eq!(starts(), before, "ps:restart web restarted the workers");

    // A new release replaces the workers; these exit after 3 heartbeats
    // and come back after a growing delay.
    let out = server.cli(src.path(), &["config:set", "EXIT_AFTER=3", "-a", "jobs"]);
    assert!(out.status.success(), "{}", text(&out));
    eventually("five crashes and restarts", || {
        replicas(&server.ps("jobs"), "worker")
            .iter()
            .all(|r| r.restarts >= 5)
    });
    let ps = server.ps("jobs");
    let worker = &replicas(&ps, "worker")[0];
    assert_eq!(
        worker.last_exit.as_deref(),
        Some("exited with status 3"),
        "{worker:?}"
    );
    assert!(server
        .logs()
        .contains("jobs app[worker.1]: Process exited with status 3"));
    // Backoff: each wait from an exit to the next start is at least the
    // delay of its place in the row — 50, 100, 200, 400, 400 ms — as the
    // log's times show.
    let waits = restart_waits(&server.app_log("jobs"), "worker.1");
    assert!(waits.len() >= 4, "{waits:?}");
    for (wait, least) in waits.iter().zip([50, 100, 200, 400, 400]) {
        assert!(
            *wait >= Duration::from_millis(least),
            "a restart after {wait:?}, before its backoff of {least} ms: {waits:?}"
        );
    }
    let human = text(&server.cli(src.path(), &["ps", "-a", "jobs"]));
    assert!(human.contains("(last: exited with status 3)"), "{human}");

    // Scaled to zero, they stop.
    let out = server.cli(src.path(), &["config:unset", "EXIT_AFTER", "-a", "jobs"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = server.cli(src.path(), &["ps:scale", "worker=0", "-a", "jobs"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(replicas(&server.ps("jobs"), "worker").is_empty());
    // Stopped: silent for three of its heartbeat periods (100 ms). A
    // silence can only be waited out: the sleep is the check.
    wpaas_tests::eventually(Duration::from_secs(10), || {
        let before = beats("worker.1");
        std::thread::sleep(Duration::from_millis(300));
        match beats("worker.1") - before {
            0 => Ok(()),
            n => Err(format!(
                "worker.1 printed {n} heartbeats after ps:scale worker=0"
            )),
        }
    });

    // The formation survives a crash of the server.
    let out = server.cli(src.path(), &["ps:scale", "worker=1", "-a", "jobs"]);
    assert!(out.status.success(), "{}", text(&out));
    server.kill();
    let server = Server::start_with(home.path(), FAST_BACKOFF).unwrap();
    let after_restart = server.logs().matches("heartbeat 1 from worker.1").count();
    eventually("the worker back after a restart", || {
        server.logs().matches("heartbeat 1 from worker.1").count() > after_restart
            || replicas(&server.ps("jobs"), "worker").len() == 1
    });
}

#[test]
fn a_failing_release_phase_blocks_its_release() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    app_source(src.path(), "web: hello.wasm\nrelease: worker.wasm once 0\n");
    let server = Server::start(home.path()).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "phased"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("-----> Running release command: worker.wasm once 0"),
        "{log}"
    );
    assert!(log.contains(r#"once: args=["once", "0"]"#), "{log}");

    std::fs::write(
        src.path().join("Procfile"),
        "web: hello.wasm\nrelease: worker.wasm once 4\n",
    )
    .unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "phased"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("once: exiting with status 4"), "{log}");
    assert!(
        log.contains("release command failed (exited with status 4)"),
        "{log}"
    );
    assert_eq!(server.get("phased", "/").status(), 200);
    let releases = server.releases("phased");
    assert_eq!(releases[0].status.as_str(), "failed", "{releases:?}");

    // The release phase runs for config changes too, with the new config.
    std::fs::write(
        src.path().join("Procfile"),
        "web: hello.wasm\nrelease: worker.wasm once $RELEASE_EXIT\n",
    )
    .unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "phased"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = server.cli(
        src.path(),
        &["config:set", "RELEASE_EXIT=9", "-a", "phased"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("exited with status 9"),
        "{}",
        text(&out)
    );
}

#[test]
fn procfile_quotes_reach_the_process_as_one_argument() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    // Both print their argv: `"a b"` is one argument, without its quotes,
    // and `$WHO` is expanded from config.
    let command = r#"worker.wasm once 0 --name "a b" 'c  d' $WHO"#;
    app_source(
        src.path(),
        &format!("web: hello.wasm\nrelease: {command}\nworker: {command}\n"),
    );
    let server = Server::start(home.path()).unwrap();
    let cli = |args: &[&str]| {
        let out = server.cli(src.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    };
    cli(&["apps:create", "quoted"]);
    cli(&["config:set", "WHO=me", "-a", "quoted"]);
    let log = cli(&["deploy", "-a", "quoted"]);
    let args = |who: &str| format!(r#"once: args=["once", "0", "--name", "a b", "c  d", "{who}"]"#);
    assert!(log.contains(&args("me")), "{log}");
    // A config change releases again from the stored argv; the worker
    // (which exits and is restarted) prints the new one.
    cli(&["ps:scale", "worker=1", "-a", "quoted"]);
    cli(&["config:set", "WHO=you", "-a", "quoted"]);
    eventually("the worker to print its arguments", || {
        cli(&["logs", "-a", "quoted", "-n", "500"]).contains(&args("you"))
    });
}

#[test]
fn run_streams_output_and_returns_the_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    app_source(src.path(), "web: hello.wasm\n");
    let server = Server::start(home.path()).unwrap();
    assert!(server
        .cli(src.path(), &["deploy", "-a", "oneoff"])
        .status
        .success());
    assert!(server
        .cli(src.path(), &["config:set", "GREETING=hola", "-a", "oneoff"])
        .status
        .success());

    let out = server.cli(
        src.path(),
        &["run", "-a", "oneoff", "--", "worker.wasm", "once", "7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.trim(),
        r#"once: args=["once", "7"] GREETING=hola"#,
        "{stdout}"
    );
    assert!(stderr.contains("once: exiting with status 7"), "{stderr}");

    let out = server.cli(
        src.path(),
        &[
            "run",
            "-a",
            "oneoff",
            "-e",
            "GREETING=hey",
            "--",
            "worker.wasm",
            "once",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("GREETING=hey"));

    for bad in [&["nope.wasm"][..], &["../../etc/passwd"], &["/etc/passwd"]] {
        let args = [&["run", "-a", "oneoff", "--"][..], bad].concat();
        let out = server.cli(src.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).starts_with("error: "), "{}", text(&out));
    }

    // A long-running one-off is listed as run.N, and stops when its
    // client goes away.
    let mut child = Command::new(wpaas_bin())
        .args(["run", "-a", "oneoff", "--", "worker.wasm"])
        .current_dir(src.path())
        .env("WPAAS_HOME", &server.home)
        .env("WPAAS_API", format!("http://{}", server.api))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    // A one-off run is named, as on Heroku: DYNO=run.N.
    assert!(first.starts_with("heartbeat 1 from run."), "{first}");
    let ps = server.ps("oneoff");
    let runs = replicas(&ps, "run");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].name.starts_with("run."), "{runs:?}");
    assert_eq!(runs[0].command.as_deref(), Some("worker.wasm"), "{runs:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    eventually("the one-off to stop", || {
        replicas(&server.ps("oneoff"), "run").is_empty()
    });
}

#[test]
fn autoscaler_grows_shrinks_and_sleeps_at_zero() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    // The scaler looks every 20 ms instead of 100: decisions come sooner.
    let server = Server::start_with(home.path(), &["--scaler-tick", "20ms"]).unwrap();
    let cli = |args: &[&str]| {
        let out = server.cli(src.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    };
    cli(&["deploy", "-a", "elastic"]);
    let out = cli(&[
        "ps:autoscale",
        "web",
        "--min",
        "0",
        "--max",
        "4",
        "--target",
        "2",
        "--cooldown",
        "300ms",
        "--idle",
        "1s",
        "-a",
        "elastic",
    ]);
    assert!(out.contains("Autoscaling web on elastic: 0..4"), "{out}");
    let web_replicas = || replicas(&server.ps("elastic"), "web").len();

    // Idle: down to zero; the next request wakes it and is answered.
    eventually("scale to zero", || web_replicas() == 0);
    assert!(
        cli(&["ps", "-a", "elastic"]).contains("=== web (0, autoscaled 0..4 at 2 in flight each)")
    );
    let response = server.get("elastic", "/sleep?ms=1");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "slept 1 ms on web.1");
    assert_eq!(web_replicas(), 1);

    // Load: 8 clients keep 8 slow requests in flight; with a target of 2
    // per replica it grows to the max of 4, and spreads over them.
    let router = server.router;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (stop, seen) = (&stop, &seen);
            scope.spawn(move || {
                let client = wpaas_tests::client();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = client
                        .get(format!("http://{router}/sleep?ms=100"))
                        .header("host", "elastic.localhost")
                        .send()
                        .unwrap()
                        .text()
                        .unwrap();
                    seen.lock().unwrap().push(body);
                }
            });
        }
        let mut most = 0;
        wpaas_tests::eventually(Duration::from_secs(10), || {
            most = most.max(web_replicas());
            match most {
                4 => Ok(()),
                n => Err(format!(
                    "the autoscaler reached {n} replicas, not the max of 4"
                )),
            }
        });
        wpaas_tests::eventually(Duration::from_secs(10), || {
            let seen = seen.lock().unwrap();
            if seen.iter().any(|b| b.ends_with("on web.4")) {
                Ok(())
            } else {
                Err(format!("no request reached web.4 in {}", seen.len()))
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // After the cool-down it shrinks, and once idle it sleeps again.
    eventually("shrinking back to zero", || web_replicas() == 0);

    // Manual scaling is refused while autoscaling; disabling keeps serving.
    let out = server.cli(src.path(), &["ps:scale", "web=2", "-a", "elastic"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("ps:autoscale:disable"),
        "{}",
        text(&out)
    );
    cli(&["ps:autoscale:disable", "web", "-a", "elastic"]);
    assert_eq!(server.get("elastic", "/sleep?ms=1").status(), 200);
    assert_eq!(web_replicas(), 1);
}

#[test]
fn ps_limits_apply_on_restart() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    let server = Server::start(home.path()).unwrap();
    assert!(server
        .cli(src.path(), &["deploy", "-a", "limited"])
        .status
        .success());
    assert_eq!(server.get("limited", "/sleep?ms=1200").status(), 200);
    let out = server.cli(
        src.path(),
        &[
            "ps:limits",
            "web",
            "--timeout",
            "500ms",
            "--memory",
            "64M",
            "-a",
            "limited",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ps:restart web"), "{}", text(&out));
    let out = server.cli(src.path(), &["ps:restart", "web", "-a", "limited"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.get("limited", "/sleep?ms=1200").status(), 504);
    assert_eq!(server.get("limited", "/sleep?ms=1").status(), 200);
    let out = server.cli(
        src.path(),
        &["ps:limits", "web", "--memory", "lots", "-a", "limited"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("invalid size"), "{}", text(&out));
}

#[test]
fn a_web_replica_that_keeps_crashing_is_replaced() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hostile"), src.path().join("hostile.wasm")).unwrap();
    let server = Server::start(home.path()).unwrap();
    assert!(server
        .cli(src.path(), &["deploy", "-a", "crashy"])
        .status
        .success());
    let restarts = || replicas(&server.ps("crashy"), "web")[0].restarts;
    assert_eq!(restarts(), 0);
    for _ in 0..4 {
        assert_eq!(server.get("crashy", "/trap").status(), 500);
    }
    // A success in between resets the count.
    assert_eq!(server.get("crashy", "/sleep?ms=1").status(), 200);
    for _ in 0..4 {
        assert_eq!(server.get("crashy", "/trap").status(), 500);
    }
    assert_eq!(restarts(), 0);
    assert_eq!(server.get("crashy", "/trap").status(), 500);
    assert_eq!(restarts(), 1);
    eventually("the replacement in the log", || {
        server
            .logs()
            .contains("crashy app[web.1]: Replaced after 5 crashed requests in a row")
    });
    let human = text(&server.cli(src.path(), &["ps", "-a", "crashy"]));
    assert!(human.contains("restarts 1"), "{human}");
    assert_eq!(server.get("crashy", "/sleep?ms=1").status(), 200);
}
