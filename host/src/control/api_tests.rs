//! The API in-process: a platform on a temporary WPAAS_HOME, the API
//! handler served by hyper on a loopback socket, requests written by hand.

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
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let platform = platform.clone();
            let service = hyper::service::service_fn(move |req| {
                let platform = platform.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        super::api::handle(platform, TOKEN.into(), req).await,
                    )
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
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
