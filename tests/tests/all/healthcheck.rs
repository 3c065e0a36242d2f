//! The deploy health check can be turned off per app (`healthcheck:set
//! --off`, Dokku's `checks:disable`) and on again with a path.

use std::path::Path;

use wpaas_api::apps::Healthcheck;
use wpaas_api::releases::ReleaseStatus;
use wpaas_tests::{text, Server};

/// A WAGI program whose every request traps, `GET /` included.
fn trapping_app(dir: &Path) {
    std::fs::write(
        dir.join("app.wat"),
        r#"(module
             (memory (export "memory") 1)
             (func (export "_start") unreachable))"#,
    )
    .unwrap();
}

#[test]
fn an_app_whose_root_traps_is_released_only_with_the_check_off() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    trapping_app(src.path());
    let server = Server::start(home.path()).unwrap();
    server.ok(src.path(), &["apps:create", "trapper"]);
    let shown = server.ok(src.path(), &["healthcheck", "-a", "trapper"]);
    assert_eq!(shown.trim(), "Health check for trapper: GET / within 10s");

    // On (the default): the trap fails the check and nothing is released.
    let out = server.cli(src.path(), &["deploy", "-a", "trapper"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("health check failed: GET /: application crashed"),
        "{log}"
    );
    assert!(server.app_info("trapper").release.is_none());

    // Off: released without the GET; the app's own 500s are its business.
    let out = server.ok(src.path(), &["healthcheck:set", "--off", "-a", "trapper"]);
    assert_eq!(
        out.trim(),
        "Health check for trapper: off (new releases take traffic as soon as they load)"
    );
    let check: Healthcheck =
        server.cli_json(src.path(), &["healthcheck", "-a", "trapper", "--json"]);
    assert!(!check.enabled, "{check:?}");
    assert_eq!(check.path, "/", "the path is kept for when it is back on");
    let out = server.cli(src.path(), &["deploy", "-a", "trapper"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("-----> Health check: off (healthcheck:set PATH turns it on)"),
        "{log}"
    );
    assert!(!log.contains("GET /"), "{log}");
    assert!(log.contains("Released v2"), "{log}");
    assert_eq!(server.get("trapper", "/").status(), 500);

    // A path turns it back on: the next release (a config change) is
    // checked again, fails, and v2 keeps serving.
    let out = server.ok(src.path(), &["healthcheck:set", "/", "-a", "trapper"]);
    assert!(out.contains("GET / within 10s"), "{out}");
    let out = server.cli(src.path(), &["config:set", "A=1", "-a", "trapper"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("health check failed"), "{}", text(&out));
    let releases = server.releases("trapper");
    assert!(
        matches!(releases[0].status, ReleaseStatus::Failed { .. }),
        "{releases:?}"
    );
    assert_eq!(server.app_info("trapper").app.current, Some(2));
}

#[test]
fn older_healthcheck_bodies_keep_working() {
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    server.ok(src.path(), &["apps:create", "oldbody"]);
    let patch = |body: serde_json::Value| -> Healthcheck {
        let response = server
            .api_request(reqwest::Method::PATCH, "/apps/oldbody/healthcheck")
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().unwrap()
    };
    // A body from before `enabled` existed changes only what it names.
    let check = patch(serde_json::json!({"timeout_ms": 500}));
    assert_eq!(
        (check.enabled, check.path.as_str(), check.timeout_ms),
        (true, "/", 500)
    );
    let check = patch(serde_json::json!({"enabled": false}));
    assert_eq!((check.enabled, check.timeout_ms), (false, 500));
    // Setting a path means "check this": it turns the check back on.
    let check = patch(serde_json::json!({"path": "/health"}));
    assert_eq!((check.enabled, check.path.as_str()), (true, "/health"));

    // Neither a path nor --off is a usage error, as are both.
    for args in [
        &["healthcheck:set"][..],
        &["healthcheck:set", "/x", "--off"],
    ] {
        let out = server.cli(src.path(), &[args, &["-a", "oldbody"]].concat());
        assert!(!out.status.success(), "{}", text(&out));
    }
    assert_eq!(
        server.api_get::<Healthcheck>("/apps/oldbody/healthcheck"),
        check
    );
}
