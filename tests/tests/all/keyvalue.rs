//! App data: key-value buckets attached with `wpaas kv:create`, opened by
//! components through wasi:keyvalue, durable across a server crash; the
//! release's config through wasi:config.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

use wpaas_tests::{client, example, text, Server};

const APP: &str = "kvc";

fn deploy(server: &Server, src: &Path) {
    let out = server.cli(src, &["deploy", "-a", APP]);
    assert!(out.status.success(), "{}", text(&out));
}

fn post(server: &Server, path: &str) -> reqwest::blocking::Response {
    client()
        .post(format!("http://{}{path}", server.router))
        .header("host", format!("{APP}.localhost"))
        .send()
        .expect("router answers")
}

/// A source directory of the built kv-counter (`kv-counter.wasm`), its
/// command (`kv-visit.wasm`, src/bin/kv-visit.rs, built beside it) and
/// `procfile`.
fn kv_counter_app(procfile: &str) -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    let counter = example("kv-counter");
    std::fs::copy(&counter, src.path().join("kv-counter.wasm")).unwrap();
    std::fs::copy(
        counter.with_file_name("kv-visit.wasm"),
        src.path().join("kv-visit.wasm"),
    )
    .unwrap();
    std::fs::write(src.path().join("Procfile"), procfile).unwrap();
    src
}

#[test]
fn buckets_are_attached_atomic_durable_and_removed_with_the_app() {
    let home = tempfile::tempdir().unwrap();
    let src = kv_counter_app("web: kv-counter.wasm\n");
    let server = Server::start(home.path()).unwrap();
    deploy(&server, src.path());

    // Nothing attached: opening any bucket is wasi:keyvalue's no-such-store.
    let body = server.get(APP, "/open?bucket=counter").text().unwrap();
    assert_eq!(body, "no-such-store\n");
    let response = server.get(APP, "/visits");
    assert_eq!(response.status(), 500);
    assert!(response.text().unwrap().contains("no-such-store"));

    let out = server.cli(src.path(), &["kv:create", "counter", "-a", APP]);
    assert!(
        text(&out).contains("Creating key-value bucket counter for kvc... done"),
        "{}",
        text(&out)
    );
    let out = server.cli(src.path(), &["kv:create", "counter", "-a", APP]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    let out = server.cli(src.path(), &["kv:create", "Bad/Name", "-a", APP]);
    assert!(text(&out).contains("invalid bucket name"), "{}", text(&out));
    assert_eq!(
        server.get(APP, "/open?bucket=counter").text().unwrap(),
        "opened counter\n"
    );
    // Attached to this app only, by name.
    assert_eq!(
        server.get(APP, "/open?bucket=other").text().unwrap(),
        "no-such-store\n"
    );

    // 200 concurrent increments through the router: each sees its own
    // count, and none is lost.
    let barrier = Arc::new(Barrier::new(200));
    let server = Arc::new(server);
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let (barrier, server) = (barrier.clone(), server.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let response = post(&server, "/visit");
                assert_eq!(response.status(), 200);
                response.text().unwrap().trim().parse::<u64>().unwrap()
            })
        })
        .collect();
    let counts: BTreeSet<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(counts, (1..=200).collect::<BTreeSet<u64>>());
    let server = Arc::into_inner(server).unwrap();

    // A JSON value and a quota: values are limited (1 MiB by default).
    let response = client()
        .put(format!("http://{}/json/profile", server.router))
        .header("host", format!("{APP}.localhost"))
        .body(r#"{"name":"ada"}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client()
        .put(format!("http://{}/json/big", server.router))
        .header("host", format!("{APP}.localhost"))
        .body(format!("\"{}\"", "x".repeat(2 << 20)))
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(response.text().unwrap().contains("quota exceeded"));
    // Bad input is the interface's error, not a trap.
    let response = client()
        .put(format!(
            "http://{}/json/{}",
            server.router,
            "k".repeat(2000)
        ))
        .header("host", format!("{APP}.localhost"))
        .body("1")
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = response.text().unwrap();
    assert!(
        body.contains("other: invalid key: the key is 2000 bytes"),
        "{body}"
    );

    // wasi:config serves the release's config vars.
    let out = server.cli(src.path(), &["config:set", "GREETING=hej", "-a", APP]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        server.get(APP, "/config?key=GREETING").text().unwrap(),
        "GREETING=hej\n"
    );
    assert_eq!(
        server.get(APP, "/config?key=NOPE").text().unwrap(),
        "NOPE is not set\n"
    );

    // A crash loses no acknowledged write.
    server.kill();
    let server = Server::start(home.path()).unwrap();
    assert_eq!(server.get(APP, "/visits").text().unwrap(), "200\n");
    assert_eq!(
        server.get(APP, "/json/profile").text().unwrap(),
        r#"{"name":"ada"}"#
    );

    // The CLI sees and changes the same data.
    let out = server.cli(src.path(), &["kv:get", "visits", "-a", APP]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200\n",
        "{}",
        text(&out)
    );
    let out = server.cli(src.path(), &["kv:set", "visits", "1000", "-a", APP]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(post(&server, "/visit").text().unwrap(), "1001\n");
    // A one-off process of the app sees the same bucket.
    let out = server.cli(src.path(), &["run", "-a", APP, "--", "kv-visit.wasm"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("visits=1002"), "{}", text(&out));
    assert_eq!(server.get(APP, "/visits").text().unwrap(), "1002\n");
    let out = server.cli(src.path(), &["kv:info", "-a", APP]);
    let info = text(&out);
    assert!(info.contains("Keys:    2 of 100000"), "{info}");
    assert!(info.contains("counter  2 keys"), "{info}");
    let out = server.cli(src.path(), &["apps:info", "-a", APP]);
    assert!(
        text(&out).contains("Data:      counter (2 keys, "),
        "{}",
        text(&out)
    );
    let out = server.cli(src.path(), &["kv:delete", "profile", "-a", APP]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.get(APP, "/json/profile").status(), 404);
    let out = server.cli(src.path(), &["kv:get", "profile", "-a", APP]);
    assert!(!out.status.success());

    // apps:destroy removes the app's data: a new app of the same name
    // starts empty.
    let out = server.cli(src.path(), &["apps:destroy", "-a", APP, "--confirm", APP]);
    assert!(out.status.success(), "{}", text(&out));
    deploy(&server, src.path());
    assert_eq!(
        server.get(APP, "/open?bucket=counter").text().unwrap(),
        "no-such-store\n"
    );
    server.ok(src.path(), &["kv:create", "counter", "-a", APP]);
    assert_eq!(server.get(APP, "/visits").text().unwrap(), "0\n");

    // `open("")`, the one bucket `wasmtime serve -Skeyvalue` serves, is the
    // bucket named `default`.
    assert_eq!(
        server.get(APP, "/open?bucket=").text().unwrap(),
        "no-such-store\n"
    );
    server.ok(src.path(), &["kv:create", "default", "-a", APP]);
    assert_eq!(
        server.get(APP, "/open?bucket=").text().unwrap(),
        "opened \n"
    );
}

#[test]
fn kv_counter_deploys_from_source_and_its_command_shares_the_bucket() {
    let home = tempfile::tempdir().unwrap();
    // Values of at most 8 bytes on this server.
    let server = Server::start_with(home.path(), &["--kv-max-value", "8"]).unwrap();
    let dir = wpaas_tests::workspace_root().join("examples/kv-counter");
    let out = server.cli(&dir, &["deploy", "-a", "kvsrc"]);
    assert!(out.status.success(), "{}", text(&out));
    server.ok(&dir, &["kv:create", "counter", "-a", "kvsrc"]);
    let out = server.cli(&dir, &["run", "-a", "kvsrc", "--", "kv-visit.wasm"]);
    assert!(text(&out).contains("visits=1"), "{}", text(&out));
    assert_eq!(server.get("kvsrc", "/visits").text().unwrap(), "1\n");
    let put = |body: &str| {
        client()
            .put(format!("http://{}/json/k", server.router))
            .header("host", "kvsrc.localhost")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    assert_eq!(put("[1,2,3]").status(), 200);
    let response = put("[1,2,3,4]");
    assert_eq!(response.status(), 413);
    let body = response.text().unwrap();
    assert!(
        body.contains("quota exceeded: the value of \"k\" is 9 bytes; the limit is 8 per value"),
        "{body}"
    );
}

/// Every kind of process of an app sees one bucket, and the data outlives
/// releases: the release phase counts a visit for each release (deploy,
/// config change, rollback), `web` replicas count theirs, and neither a
/// rollback nor `ps:restart` nor a server restart loses one.
#[test]
fn every_process_sees_one_bucket_that_outlives_releases_and_restarts() {
    let home = tempfile::tempdir().unwrap();
    let src = kv_counter_app("web: kv-counter.wasm\nrelease: kv-visit.wasm\n");
    let server = Server::start(home.path()).unwrap();
    // Attached before the first release, so its release phase finds it.
    server.ok(src.path(), &["apps:create", APP]);
    server.ok(src.path(), &["kv:create", "counter", "-a", APP]);
    let visits = |server: &Server| server.get(APP, "/visits").text().unwrap();

    let log = server.ok(src.path(), &["deploy", "-a", APP]);
    assert!(log.contains("visits=1"), "{log}");
    server.ok(src.path(), &["ps:scale", "web=3", "-a", APP]);
    for _ in 0..6 {
        assert_eq!(post(&server, "/visit").status(), 200);
    }
    assert_eq!(visits(&server), "7\n");

    server.ok(src.path(), &["config:set", "MOOD=calm", "-a", APP]);
    assert_eq!(visits(&server), "8\n");
    server.ok(src.path(), &["rollback", "-a", APP]);
    assert_eq!(visits(&server), "9\n");
    server.ok(src.path(), &["ps:restart", "-a", APP]);
    assert_eq!(visits(&server), "9\n");
    // Each replica reads the same count.
    for _ in 0..6 {
        assert_eq!(visits(&server), "9\n");
    }

    // A graceful restart of the server keeps it too (`kill -9` is covered
    // above).
    drop(server);
    let server = Server::start(home.path()).unwrap();
    assert_eq!(visits(&server), "9\n");
    // A key that is not UTF-8 is refused at the API's door.
    let response = server
        .api_request(
            reqwest::Method::GET,
            &format!("/apps/{APP}/kv/counter/keys/%FF%FE"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("Invalid UTF-8"));
    let out = server.cli(src.path(), &["run", "-a", APP, "--", "kv-visit.wasm"]);
    assert!(text(&out).contains("visits=10"), "{}", text(&out));
}

/// `wpaas up` serves bucket `default` (what `open("")` opens) and each
/// `--kv` bucket from a store of its own that outlives the process.
#[test]
fn up_attaches_default_and_named_buckets_that_outlive_it() {
    let home = tempfile::tempdir().unwrap();
    let wasm = example("kv-counter");
    let start = || wpaas_tests::UpServer::start_in(home.path(), &wasm, &["--kv", "counter"]);
    let up = start().unwrap();
    let fetch = |up: &wpaas_tests::UpServer, method: reqwest::Method, path: &str| {
        client()
            .request(method, up.url(path))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert_eq!(fetch(&up, reqwest::Method::POST, "/visit"), "1\n");
    assert_eq!(fetch(&up, reqwest::Method::POST, "/visit"), "2\n");
    assert_eq!(
        fetch(&up, reqwest::Method::GET, "/open?bucket="),
        "opened \n"
    );
    assert_eq!(
        fetch(&up, reqwest::Method::GET, "/open?bucket=other"),
        "no-such-store\n"
    );
    up.stop();
    let up = start().unwrap();
    assert_eq!(fetch(&up, reqwest::Method::GET, "/visits"), "2\n");
    // A bad bucket name is refused before anything is served.
    drop(up);
    let bad = wpaas_tests::UpServer::start_in(home.path(), &wasm, &["--kv", "Bad/Name"]);
    let err = bad.err().expect("a bad bucket name is refused").to_string();
    assert!(err.contains("invalid bucket name"), "{err}");
}

/// `method path` with `body` to `app` through the router.
fn send(server: &Server, app: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = client()
        .request(method, format!("http://{}{path}", server.router))
        .header("host", format!("{app}.localhost"))
        .body(body.to_string())
        .send()
        .expect("router answers");
    (response.status().as_u16(), response.text().unwrap())
}

/// Deploys `dir`, a visit counter and JSON store in another language
/// (`examples/python-kv`, `examples/js-kv`: `POST /visit`, `GET /visits`,
/// `PUT|GET|DELETE /json/KEY`, `GET /json`, `GET /config?key=K`), from
/// source as `app` and holds it to what its SDK promises: no bucket is an
/// error it can tell apart, concurrent increments are exact, JSON round-trips,
/// a quota error carries the store's reason, and wasi:config serves the
/// config vars.
pub(crate) fn a_data_app_counts_and_stores(dir: &Path, app: &str) {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(home.path(), &["--kv-max-value", "64"]).unwrap();
    let out = server.cli(dir, &["deploy", "-a", app]);
    assert!(out.status.success(), "{}", text(&out));

    // Not attached yet: the SDK's NoSuchStore, which the app answers 503.
    let (status, body) = send(&server, app, "GET", "/visits", "");
    assert_eq!(
        (status, body.as_str()),
        (503, "attach the bucket first: wpaas kv:create counter\n")
    );
    server.ok(dir, &["kv:create", "counter", "-a", app]);

    // 100 concurrent increments: each sees its own count, none is lost.
    let barrier = Arc::new(Barrier::new(100));
    let server = Arc::new(server);
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (barrier, server, app) = (barrier.clone(), server.clone(), app.to_string());
            std::thread::spawn(move || {
                barrier.wait();
                let (status, body) = send(&server, &app, "POST", "/visit", "");
                assert_eq!(status, 200, "{body}");
                body.trim().parse::<u64>().unwrap()
            })
        })
        .collect();
    let counts: BTreeSet<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(counts, (1..=100).collect::<BTreeSet<u64>>());
    let server = Arc::into_inner(server).unwrap();
    assert_eq!(
        send(&server, app, "GET", "/visits", ""),
        (200, "100\n".into())
    );
    let out = server.cli(dir, &["kv:get", "visits", "-a", app]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "100\n",
        "{}",
        text(&out)
    );

    // The JSON store.
    let stored = (200, "stored\n".to_string());
    let profile = r#"{"name": "ada", "langs": ["py", "js"]}"#;
    assert_eq!(send(&server, app, "PUT", "/json/profile", profile), stored);
    assert_eq!(send(&server, app, "PUT", "/json/n", "42"), stored);
    assert_eq!(send(&server, app, "PUT", "/json/x", "{nope").0, 400);
    let (status, body) = send(&server, app, "GET", "/json/profile", "");
    assert_eq!(status, 200, "{body}");
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!({"name": "ada", "langs": ["py", "js"]})
    );
    assert_eq!(send(&server, app, "GET", "/json/n", ""), (200, "42".into()));
    let (_, keys) = send(&server, app, "GET", "/json", "");
    let keys: Vec<String> = serde_json::from_str(&keys).unwrap();
    assert_eq!(keys, ["n", "profile"]);
    assert_eq!(send(&server, app, "DELETE", "/json/n", "").0, 200);
    assert_eq!(send(&server, app, "GET", "/json/n", "").0, 404);
    // Over this server's 64-byte values: the store's reason, through the
    // SDK's error.
    let big = format!("\"{}\"", "x".repeat(100));
    let (status, body) = send(&server, app, "PUT", "/json/big", &big);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("quota exceeded: the value of \"json:big\""),
        "{body}"
    );

    // wasi:config: the config vars, not the platform's DYNO.
    server.ok(dir, &["config:set", "GREETING=hej", "-a", app]);
    let config = |key: &str| send(&server, app, "GET", &format!("/config?key={key}"), "");
    assert_eq!(config("GREETING"), (200, "GREETING=hej\n".into()));
    assert_eq!(config("DYNO"), (200, "DYNO is not set\n".into()));
}
