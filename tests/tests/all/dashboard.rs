//! The dashboard's server side, as a browser meets it: the embedded page,
//! sign-in with the API token into an `HttpOnly; SameSite=Strict` session
//! cookie, the API answering that session (changes only with its CSRF
//! token), live logs as Server-Sent Events, sign-out.

use reqwest::blocking::{Client, RequestBuilder};
use std::io::{BufRead, BufReader};
use wpaas_tests::{example, text, Server};

fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// A request as the dashboard's script sends it: the session cookie, and
/// for a change the CSRF token.
fn with_session(req: RequestBuilder, cookie: &str, csrf: Option<&str>) -> RequestBuilder {
    let req = req.header("cookie", format!("wpaas_session={cookie}"));
    match csrf {
        Some(csrf) => req.header("x-csrf-token", csrf),
        None => req,
    }
}

#[test]
fn a_browser_signs_in_with_the_token_and_steers_an_app_through_the_api() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "hello"]);
    assert!(out.status.success(), "{}", text(&out));
    let base = format!("http://{}", server.api);
    let browser = browser();

    // The page: embedded, locked to its own origin.
    let root = browser.get(format!("{base}/")).send().unwrap();
    assert_eq!(root.status(), 302);
    assert_eq!(root.headers()["location"], "/dashboard");
    let page = browser.get(format!("{base}/dashboard")).send().unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(page.text().unwrap().contains("/dashboard/app.js"));
    let script = browser
        .get(format!("{base}/dashboard/app.js"))
        .send()
        .unwrap();
    assert_eq!(script.status(), 200);

    // Without a session, nothing.
    assert_eq!(
        browser.get(format!("{base}/apps")).send().unwrap().status(),
        401
    );
    assert_eq!(
        browser
            .get(format!("{base}/dashboard/session"))
            .send()
            .unwrap()
            .status(),
        401
    );
    // A wrong token, or a form post (what another site could make a
    // browser send), signs nobody in.
    let wrong = browser
        .post(format!("{base}/dashboard/session"))
        .json(&serde_json::json!({"token": "guess"}))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let form = browser
        .post(format!("{base}/dashboard/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", server.token()))
        .send()
        .unwrap();
    assert_eq!(form.status(), 400);

    // The token signs in.
    let signed = browser
        .post(format!("{base}/dashboard/session"))
        .json(&serde_json::json!({"token": server.token()}))
        .send()
        .unwrap();
    assert_eq!(signed.status(), 200);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = cookie
        .strip_prefix("wpaas_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_string();
    let csrf = signed.json::<serde_json::Value>().unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();

    // Reads with the session alone; the app deployed by the CLI is there.
    let apps: Vec<wpaas_api::apps::App> =
        with_session(browser.get(format!("{base}/apps")), &session, None)
            .send()
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(apps[0].name, "hello");

    // A change without the CSRF token is refused and changes nothing.
    let forged = with_session(
        browser.patch(format!("{base}/apps/hello/config")),
        &session,
        None,
    )
    .json(&serde_json::json!({"GREETING": "forged"}))
    .send()
    .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(forged.text().unwrap().contains("X-CSRF-Token"));
    assert_eq!(server.releases("hello").len(), 1);

    // With it: config, scale, rollback, as the CLI would.
    let set = with_session(
        browser.patch(format!("{base}/apps/hello/config")),
        &session,
        Some(&csrf),
    )
    .json(&serde_json::json!({"GREETING": "from the dashboard"}))
    .send()
    .unwrap();
    assert_eq!(set.status(), 201, "{}", set.text().unwrap());
    let releases = server.releases("hello");
    assert_eq!(releases[0].version, 2);
    // Who made each: the dashboard this one, the CLI the deploy.
    assert_eq!(releases[0].by.as_deref(), Some("dashboard"));
    assert_eq!(releases[1].by.as_deref(), Some("cli"));
    assert!(server
        .get("hello", "/")
        .text()
        .unwrap()
        .contains("GREETING=from the dashboard"));
    let scaled = with_session(
        browser.patch(format!("{base}/apps/hello/formation")),
        &session,
        Some(&csrf),
    )
    .json(&serde_json::json!({"web": 2}))
    .send()
    .unwrap();
    assert_eq!(scaled.status(), 200);
    assert_eq!(wpaas_tests::replicas(&server.ps("hello"), "web").len(), 2);
    let rolled = with_session(
        browser.post(format!("{base}/apps/hello/rollback")),
        &session,
        Some(&csrf),
    )
    .json(&serde_json::json!({"version": 1}))
    .send()
    .unwrap();
    assert_eq!(rolled.status(), 201);
    assert!(server
        .get("hello", "/")
        .text()
        .unwrap()
        .contains("GREETING=unset"));

    // The metrics plots' data: the last hour, a point a minute, counting
    // the two requests made above (both 200).
    let series: wpaas_api::ps::Series = with_session(
        browser.get(format!("{base}/apps/hello/metrics")),
        &session,
        None,
    )
    .send()
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(series.slot_seconds, 60);
    let answered: u64 = series.points.iter().map(|p| p.requests).sum();
    let ok: u64 = series.points.iter().map(|p| p.by_class[1]).sum();
    assert!(answered >= 2 && ok >= 2, "{series:?}");
    assert!(
        series.points.iter().any(|p| p.p50_ms.is_some()),
        "{series:?}"
    );

    // The apps list's numbers: requests in the last minute, replicas.
    let traffic: Vec<wpaas_api::ps::AppTraffic> =
        with_session(browser.get(format!("{base}/metrics/apps")), &session, None)
            .send()
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(traffic[0].app, "hello");
    assert!(traffic[0].requests_per_minute >= 2, "{traffic:?}");
    assert_eq!(traffic[0].web_replicas, 2, "{traffic:?}");

    // Live logs as Server-Sent Events: a request shows up as an event.
    let events = with_session(
        wpaas_tests::client().get(format!("{base}/apps/hello/logs?n=1&tail=true&format=sse")),
        &session,
        None,
    )
    .send()
    .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut lines = BufReader::new(events).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("data: "));
    server.get("hello", "/?from=dashboard-test");
    let seen = lines
        .map_while(Result::ok)
        .find(|line| line.contains("from=dashboard-test"));
    assert!(seen.is_some_and(|line| line.starts_with("data: ")));

    // Sign-out needs the CSRF token too, then the session is gone.
    let out = with_session(
        browser.delete(format!("{base}/dashboard/session")),
        &session,
        None,
    )
    .send()
    .unwrap();
    assert_eq!(out.status(), 401);
    let out = with_session(
        browser.delete(format!("{base}/dashboard/session")),
        &session,
        Some(&csrf),
    )
    .send()
    .unwrap();
    assert_eq!(out.status(), 200);
    let after = with_session(browser.get(format!("{base}/apps")), &session, None)
        .send()
        .unwrap();
    assert_eq!(after.status(), 401);
}
