//! The API in-process: a platform on a temporary WPAAS_HOME, the API's
//! router served by hyper on a loopback socket, requests written by hand.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::PlatformError;
use super::platform::Platform;
use super::store::SledStore;
use crate::logs::LogHub;
use crate::router::RouteTable;
use crate::runtime::{EngineConfig, Runtime};

const TOKEN: &str = "secret-token";

/// Serves the API over a platform on `home`; returns its address.
async fn serve(home: &std::path::Path) -> std::net::SocketAddr {
    let home = crate::home::Home::new(home);
    let store = Arc::new(SledStore::open(&home).unwrap());
    let engine = EngineConfig {
        max_instances: 4,
        ..EngineConfig::default()
    };
    let runtime = Arc::new(Runtime::new(&engine, home.compiled_cache()).unwrap());
    let platform = Arc::new(Platform::new(
        store,
        runtime,
        Arc::new(RouteTable::new()),
        8080,
        Arc::new(LogHub::in_memory(100)),
        Arc::default(),
        Arc::new(crate::data::SledKv::open(&home.kv(), crate::data::Quotas::default()).unwrap()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = std::sync::Arc::new(super::api::auth::Auth::new(TOKEN.into(), false));
    let api = super::api::router(platform, auth);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let api = api.clone();
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(super::api::serve(api, req).await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// [`serve`] on a temporary home with one app created.
async fn serve_with_app(app: &str) -> (tempfile::TempDir, std::net::SocketAddr) {
    let home = tempfile::tempdir().unwrap();
    let addr = serve(home.path()).await;
    let body = format!(r#"{{"name":"{app}"}}"#);
    let (status, _) = call(addr, "POST", "/apps", Some(TOKEN), &body).await;
    assert_eq!(status, 201);
    (home, addr)
}

/// One request; the status and the JSON body.
async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: api\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[tokio::test]
async fn answers_carry_the_status_and_code_of_their_kind() {
    let home = tempfile::tempdir().unwrap();
    let addr = serve(home.path()).await;
    let ok = Some(TOKEN);

    let (status, body) = call(addr, "GET", "/apps", None, "").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = call(addr, "GET", "/apps", Some("wrong"), "").await;
    assert_eq!(status, 401);

    let (status, body) = call(addr, "POST", "/apps", ok, r#"{"name":"hello"}"#).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (201, Some("hello")),
        "{body}"
    );
    let (status, body) = call(addr, "POST", "/apps", ok, r#"{"name":"hello"}"#).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("already exists"));

    let (status, body) = call(addr, "GET", "/apps/nope", ok, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = call(addr, "POST", "/apps", ok, r#"{"name":"Bad Name"}"#).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );
    let (status, body) = call(addr, "POST", "/apps", ok, "{not json").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );

    // Not deployed: nothing to restart, a conflict with the app's state.
    let (status, body) = call(addr, "POST", "/apps/hello/ps/restart", ok, "{}").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
}

#[test]
fn an_internal_error_answers_500_with_a_request_id_and_no_detail() {
    let err = PlatformError::internal(anyhow::anyhow!("disk on fire at /secret/path"));
    let response = super::api::error_response(err);
    assert_eq!(response.status(), 500);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bytes = rt
        .block_on(http_body_util::BodyExt::collect(response.into_body()))
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let id = body["request_id"].as_str().unwrap();
    assert_eq!(body["code"], "internal");
    assert_eq!(
        body["error"],
        format!("internal error (request id {id}); see the server log")
    );
    assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
}

#[tokio::test]
async fn the_token_is_checked_before_routing_and_unknown_routes_are_404() {
    let home = tempfile::tempdir().unwrap();
    let addr = serve(home.path()).await;

    // No token: 401 even where no route is, so nothing is learnt without one.
    let (status, body) = call(addr, "GET", "/nope", None, "").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    let (status, body) = call(addr, "GET", "/nope/", Some(TOKEN), "").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(body["error"], "no API route /nope", "{body}");
    // A known path with another method is no route either.
    let (status, body) = call(addr, "PATCH", "/apps", Some(TOKEN), "{}").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "no API route /apps", "{body}");
    // A trailing slash names the same route.
    let (status, body) = call(addr, "GET", "/apps/", Some(TOKEN), "").await;
    assert_eq!((status, body), (200, serde_json::json!([])));
}

#[tokio::test]
async fn unreadable_requests_are_400_with_one_line() {
    let (_home, addr) = serve_with_app("hello").await;
    let ok = Some(TOKEN);

    // A body of the wrong shape.
    let (status, body) = call(
        addr,
        "PATCH",
        "/apps/hello/formation",
        ok,
        r#"{"web":"two"}"#,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body"),
        "{body}"
    );
    // A query of the wrong shape.
    let (status, body) = call(addr, "GET", "/apps/hello/logs?n=many", ok, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    assert!(!body["error"].as_str().unwrap().contains('\n'), "{body}");
    let (status, body) = call(addr, "GET", "/apps/hello/releases/vx", ok, "").await;
    assert_eq!(status, 400, "{body}");
    // A body over 1 MiB is not read.
    let big = format!(r#"{{"X":"{}"}}"#, "x".repeat(1 << 20));
    let (status, body) = call(addr, "PATCH", "/apps/hello/config", ok, &big).await;
    assert_eq!(status, 400, "{body}");
    // An empty body reads as `{}`: restart all, which conflicts with an
    // app never deployed (not a 400).
    let (status, body) = call(addr, "POST", "/apps/hello/ps/restart", ok, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
}

#[tokio::test]
async fn a_config_change_makes_a_release_and_rolls_back() {
    let (_home, addr) = serve_with_app("hello").await;
    let ok = Some(TOKEN);

    let (status, body) = call(addr, "PATCH", "/apps/hello/config", ok, "{}").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    let (status, body) = call(addr, "POST", "/apps/hello/rollback", ok, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );

    let (status, v1) = call(
        addr,
        "PATCH",
        "/apps/hello/config",
        ok,
        r#"{"GREETING":"hi"}"#,
    )
    .await;
    assert_eq!(status, 201, "{v1}");
    let v1: wpaas_api::releases::Release = serde_json::from_value(v1).unwrap();
    assert_eq!(
        (v1.version, v1.description.as_str()),
        (1, "Set GREETING config vars")
    );
    assert_eq!(v1.status, wpaas_api::releases::ReleaseStatus::Succeeded);
    let (_, v2) = call(
        addr,
        "PATCH",
        "/apps/hello/config",
        ok,
        r#"{"GREETING":null,"NAME":"x"}"#,
    )
    .await;
    assert_eq!(v2["description"], "Set NAME; unset GREETING config vars");
    let (_, config) = call(addr, "GET", "/apps/hello/config", ok, "").await;
    assert_eq!(config, serde_json::json!({"NAME": "x"}));

    let (status, body) = call(addr, "POST", "/apps/hello/rollback", ok, "").await;
    assert_eq!(status, 201, "{body}");
    let back: wpaas_api::releases::RolledBack = serde_json::from_value(body).unwrap();
    assert_eq!((back.rolled_back_to, back.release.version), (1, 3));
    assert_eq!(back.release.config["GREETING"], "hi");

    let (_, info) = call(addr, "GET", "/apps/hello", ok, "").await;
    let info: wpaas_api::apps::AppInfo = serde_json::from_value(info).unwrap();
    assert_eq!(info.app.current, Some(3));
    assert_eq!(
        info.release.map(|r| r.description).as_deref(),
        Some("Rollback to v1")
    );
    // Releases answer the wire type, not the record (which keeps argv).
    let (_, releases) = call(addr, "GET", "/apps/hello/releases", ok, "").await;
    assert_eq!(releases.as_array().unwrap().len(), 3);
    assert!(releases[0].get("argv").is_none(), "{releases}");
}

#[tokio::test]
async fn limits_answer_the_one_type_they_set() {
    let (_home, addr) = serve_with_app("hello").await;
    let ok = Some(TOKEN);

    let (status, body) = call(
        addr,
        "PUT",
        "/apps/hello/limits/web",
        ok,
        r#"{"memory":"64M","timeout":"2s"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"memory_bytes": 64 << 20, "timeout_ms": 2000})
    );
    let (status, body) = call(
        addr,
        "PUT",
        "/apps/hello/limits/worker",
        ok,
        r#"{"concurrency":2}"#,
    )
    .await;
    assert_eq!((status, body), (200, serde_json::json!({"concurrency": 2})));
    let (status, body) = call(addr, "PUT", "/apps/hello/limits/web", ok, "{}").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );

    let (_, info) = call(addr, "GET", "/apps/hello", ok, "").await;
    assert_eq!(info["app"]["limits"]["web"]["timeout_ms"], 2000, "{info}");
    assert_eq!(info["app"]["limits"]["worker"]["concurrency"], 2, "{info}");
}
