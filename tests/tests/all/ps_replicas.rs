//! One replica at a time: `ps:restart web.2` and `ps:stop worker.1`
//! start only that replica afresh (the formation keeps asking for it),
//! `ps:stop run.N` ends a one-off run, and a name `ps` does not list is a
//! clear error. Also: the deploy's health check is not counted as served.

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use wpaas_api::ps::ProcessType;
use wpaas_tests::golden::Transcript;
use wpaas_tests::{eventually, example, replicas, text, Server};

/// A server with the app `multi` deployed: hello.wasm as `web`,
/// worker.wasm as `worker`. The server goes first when it is dropped.
struct Deployed {
    server: Server,
    src: tempfile::TempDir,
    _home: tempfile::TempDir,
}

fn deployed() -> Deployed {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let dir = src.path();
    std::fs::copy(example("hello"), dir.join("hello.wasm")).unwrap();
    std::fs::copy(example("worker"), dir.join("worker.wasm")).unwrap();
    std::fs::write(
        dir.join("Procfile"),
        "web: hello.wasm\nworker: worker.wasm\n",
    )
    .unwrap();
    let server = Server::start(home.path()).unwrap();
    server.ok(dir, &["deploy", "-a", "multi"]);
    Deployed {
        server,
        src,
        _home: home,
    }
}

/// `(name, served, since)` of each web replica.
fn web_replicas(ps: &[ProcessType]) -> Vec<(String, u64, String)> {
    replicas(ps, "web")
        .iter()
        .map(|r| (r.name.clone(), r.served.unwrap_or(0), r.since.clone()))
        .collect()
}

/// Lines `worker.N` logged as its first heartbeat (one per start).
fn starts(server: &Server, worker: &str) -> usize {
    server
        .app_log("multi")
        .matches(&format!("app[{worker}]: heartbeat 1 from {worker} "))
        .count()
}

/// A failed command's stderr, which must contain every one of `wanted`.
fn fails_with(server: &Server, dir: &Path, args: &[&str], wanted: &[&str]) {
    let out = server.cli(dir, args);
    assert!(!out.status.success(), "wpaas {args:?}: {}", text(&out));
    let said = text(&out);
    for part in wanted {
        assert!(
            said.contains(part),
            "wpaas {args:?}: {part:?} missing: {said}"
        );
    }
}

#[test]
fn one_replica_restarts_or_stops_while_the_others_keep_serving() {
    let Deployed { server, src, .. } = &deployed();
    let dir = src.path();

    // The deploy's health check is the platform's request: not served.
    let ps = server.ps("multi");
    assert_eq!(web_replicas(&ps)[0].1, 0, "{ps:?}");
    let human = server.ok(dir, &["ps", "-a", "multi"]);
    assert!(human.contains("(0 requests)"), "{human}");
    assert!(human.contains("served 0"), "{human}");

    server.ok(dir, &["ps:scale", "web=3", "worker=2", "-a", "multi"]);
    for _ in 0..9 {
        assert_eq!(server.get("multi", "/").status(), 200);
    }
    let before = web_replicas(&server.ps("multi"));
    assert!(
        before.iter().all(|(_, served, _)| *served > 0),
        "{before:?}"
    );
    eventually(Duration::from_secs(10), || {
        match (starts(server, "worker.1"), starts(server, "worker.2")) {
            (1, 1) => Ok(()),
            other => Err(format!("worker starts: {other:?}")),
        }
    });

    let mut t = Transcript::new("ps_replicas");
    t.redact_server(server);
    t.ok(server, dir, &["ps:restart", "web.2", "-a", "multi"]);
    // Only web.2 is new: its counters start again, the others keep theirs.
    let after = web_replicas(&server.ps("multi"));
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[1].1, 0, "web.2 restarted: {after:?}");
    assert_eq!(
        (after[0].1, after[2].1),
        (before[0].1, before[2].1),
        "{after:?}"
    );
    assert_eq!((&after[0].2, &after[2].2), (&before[0].2, &before[2].2));
    assert_eq!(server.get("multi", "/").status(), 200);

    // A stopped worker replica is started again by the formation; the
    // other is left alone.
    t.ok(server, dir, &["ps:stop", "worker.1", "-a", "multi"]);
    eventually(Duration::from_secs(10), || {
        match starts(server, "worker.1") {
            2 => Ok(()),
            n => Err(format!("worker.1 started {n} times")),
        }
    });
    assert_eq!(starts(server, "worker.2"), 1);
    assert_eq!(replicas(&server.ps("multi"), "worker").len(), 2);
    t.ok(server, dir, &["ps:restart", "worker.2", "-a", "multi"]);
    eventually(Duration::from_secs(10), || {
        match starts(server, "worker.2") {
            2 => Ok(()),
            n => Err(format!("worker.2 started {n} times")),
        }
    });
    t.check();

    // Names `ps` does not list.
    fails_with(
        server,
        dir,
        &["ps:restart", "web.9", "-a", "multi"],
        &["web.9 is not running in multi (running: web.1, web.2, web.3)"],
    );
    fails_with(
        server,
        dir,
        &["ps:stop", "bogus.1", "-a", "multi"],
        &["no process type \"bogus\""],
    );
    fails_with(
        server,
        dir,
        &["ps:stop", "web.x", "-a", "multi"],
        &["\"web.x\" is not a process"],
    );
    fails_with(
        server,
        dir,
        &["ps:stop", "run.4", "-a", "multi"],
        &["run.4 is not running in multi (one-off runs: none)"],
    );
}

#[test]
fn ps_stop_ends_a_one_off_run() {
    let Deployed { server, src, .. } = &deployed();
    let dir = src.path();

    // worker.wasm without arguments beats forever.
    let mut child = server
        .command(dir, &["run", "-a", "multi", "--", "worker.wasm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open until the end: a closed pipe would end the run first.
    let mut output = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    output.read_line(&mut first).unwrap();
    assert!(first.starts_with("heartbeat 1"), "{first}");
    let ps = server.ps("multi");
    let run = replicas(&ps, "run")[0].name.clone();

    let out = server.cli(dir, &["ps:stop", &run, "-a", "multi"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("Stopping {run} of multi... done")));
    // The client sees its run end, as stopped, and `ps` no longer lists it.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(replicas(&server.ps("multi"), "run").is_empty());
    drop(output);
}

#[test]
fn a_crashed_worker_shows_its_state_now_and_counts_a_restart_once_it_happens() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let dir = src.path();
    std::fs::copy(example("worker"), dir.join("worker.wasm")).unwrap();
    std::fs::write(dir.join("Procfile"), "worker: worker.wasm\n").unwrap();
    // A long first backoff: the replica stays crashed, waiting, for 3 s.
    let server = Server::start_with(home.path(), &["--restart-backoff", "3s"]).unwrap();
    server.ok(dir, &["deploy", "-a", "jobs"]);
    server.ok(dir, &["config:set", "EXIT_AFTER=1", "-a", "jobs"]);
    server.ok(dir, &["ps:scale", "worker=1", "-a", "jobs"]);
    // It exited once and waits: crashed, how it ended, no restart yet.
    let crashed = eventually(Duration::from_secs(10), || {
        let ps = server.ps("jobs");
        let worker = replicas(&ps, "worker").first().cloned();
        match worker {
            Some(w) if w.state == "crashed" => Ok(w),
            other => Err(format!("not crashed yet: {other:?}")),
        }
    });
    assert_eq!(crashed.restarts, 0, "{crashed:?}");
    assert_eq!(crashed.last_exit.as_deref(), Some("exited with status 3"));
    let human = server.ok(dir, &["ps", "-a", "jobs"]);
    assert!(
        human.contains("worker.1: crashed since ")
            && human.contains("(last: exited with status 3)"),
        "{human}"
    );
    assert!(!human.contains("restarts"), "{human}");
    // Once it has run again, the restart counts.
    eventually(Duration::from_secs(10), || {
        let ps = server.ps("jobs");
        match replicas(&ps, "worker").first() {
            Some(w) if w.restarts == 1 => Ok(()),
            other => Err(format!("no restart yet: {other:?}")),
        }
    });
}
