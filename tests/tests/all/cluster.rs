//! `wpaas server --cluster`: servers on one etcd share apps, releases and
//! config; with etcd down, writes fail with a clear error and apps keep
//! serving; when it is back, writes work again.

use std::path::Path;
use std::time::Duration;

use wpaas_api::releases::ReleaseStatus;
use wpaas_tests::etcd::EtcdServer;
use wpaas_tests::{eventually, example, text, Server};

fn node(home: &Path, etcd: &EtcdServer, name: &str) -> Server {
    Server::start_with(home, &["--cluster", &etcd.endpoint(), "--node", name]).unwrap()
}

#[test]
fn two_servers_on_one_etcd_share_records_and_survive_its_outage() {
    let mut etcd = EtcdServer::start_new();
    let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    let n1 = node(h1.path(), &etcd, "n1");
    let n2 = node(h2.path(), &etcd, "n2");

    let out = n1.cli(src.path(), &["deploy", "-a", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = n1.cli(src.path(), &["config:set", "GREETING=hola", "-a", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(n1
        .get("hello", "/")
        .text()
        .unwrap()
        .contains("GREETING=hola"));

    // What node 1 wrote, node 2 reads.
    let releases = n2.releases("hello");
    let versions: Vec<u32> = releases.iter().map(|r| r.version).collect();
    assert_eq!(versions, [2, 1]);
    assert_eq!(releases[0].status, ReleaseStatus::Succeeded);
    let out = n2.cli(src.path(), &["config:get", "GREETING", "-a", "hello"]);
    assert_eq!(text(&out).trim(), "hola", "{}", text(&out));
    // One name, one app, whichever node is asked.
    let out = n2.cli(src.path(), &["apps:create", "shared"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = n1.cli(src.path(), &["apps:create", "shared"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"), "{}", text(&out));

    // etcd down: writes fail saying so, the app keeps serving.
    etcd.stop();
    let out = n1.cli(src.path(), &["apps:create", "during"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("unreachable") && said.contains(&etcd.endpoint()),
        "{said}"
    );
    assert!(n1
        .get("hello", "/")
        .text()
        .unwrap()
        .contains("GREETING=hola"));

    // etcd back: writes work again.
    etcd.start();
    eventually(Duration::from_secs(30), || {
        let out = n1.cli(src.path(), &["apps:create", "after"]);
        out.status.success().then_some(()).ok_or_else(|| text(&out))
    });
    let out = n2.cli(src.path(), &["apps:info", "-a", "after"]);
    assert!(out.status.success(), "{}", text(&out));
}
