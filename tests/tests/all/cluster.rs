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

/// `wpaas nodes` as the given node answers it, as JSON.
fn nodes(server: &Server) -> wpaas_api::nodes::Nodes {
    server.cli_json(Path::new("."), &["nodes", "--json"])
}

/// Names of the live nodes and the leader's.
fn roster(server: &Server) -> (Vec<String>, Vec<String>) {
    let list = nodes(server);
    let names = list.nodes.iter().map(|n| n.name.clone()).collect();
    let leaders = list
        .nodes
        .iter()
        .filter(|n| n.leader)
        .map(|n| n.name.clone())
        .collect();
    (names, leaders)
}

#[test]
fn three_nodes_share_a_token_see_each_other_and_replace_a_dead_leader() {
    let etcd = EtcdServer::start_new();
    let homes: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |i: usize| {
        let name = format!("n{}", i + 1);
        Server::start_with(
            homes[i].path(),
            &[
                "--cluster",
                &etcd.endpoint(),
                "--node",
                &name,
                "--lease-ttl",
                "2s",
                "--slots",
                "7",
            ],
        )
        .unwrap()
    };
    let n1 = start(0);
    let n2 = start(1);
    let n3 = start(2);

    // One token: node 1's CLI login works on node 3.
    assert_eq!(n1.token(), n3.token());
    let (names, leaders) = roster(&n3);
    assert_eq!(names, ["n1", "n2", "n3"]);
    assert_eq!(leaders, ["n1"], "the first node leads");
    let list = nodes(&n2);
    assert_eq!(list.this, "n2");
    assert!(list.clustered);
    assert_eq!(list.nodes[2].api, n3.api.to_string());
    assert_eq!(list.nodes[2].router, n3.router.to_string());
    assert_eq!(list.nodes[2].slots, 7);
    let table = n2.ok(Path::new("."), &["nodes"]);
    assert!(table.contains("=== Cluster nodes (3 live)"), "{table}");
    assert!(table.contains("member (this)"), "{table}");

    // The leader dies without a word: within the lease's TTL it is gone and
    // another node leads.
    n1.kill();
    let (names, leaders) = eventually(Duration::from_secs(15), || {
        let (names, leaders) = roster(&n2);
        (names == ["n2", "n3"] && leaders.len() == 1)
            .then_some((names.clone(), leaders.clone()))
            .ok_or_else(|| format!("{names:?} led by {leaders:?}"))
    });
    assert_eq!(names, ["n2", "n3"]);
    assert!(leaders == ["n2"] || leaders == ["n3"], "{leaders:?}");

    // It rejoins on restart (a new address: after its old record expired).
    let n1 = start(0);
    let (names, _) = roster(&n1);
    assert_eq!(names, ["n1", "n2", "n3"]);
    assert_eq!(roster(&n3).1, leaders, "leadership stays where it went");
}

#[test]
fn a_single_server_is_a_cluster_of_one() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let list = nodes(&server);
    assert!(!list.clustered);
    assert_eq!(list.nodes.len(), 1);
    assert!(list.nodes[0].leader);
    assert_eq!(list.nodes[0].router, server.router.to_string());
    assert_eq!(list.nodes[0].slots, 100);
    let table = server.ok(Path::new("."), &["nodes"]);
    assert!(table.contains("(single node, no --cluster)"), "{table}");
    assert!(table.contains("leader (this)"), "{table}");
}
