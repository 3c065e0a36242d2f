//! HTTPS end to end, with a CA and certificates made for each test: the CLI
//! trusts the server through `--ca`/WPAAS_CA and refuses it without; apps
//! answer over the HTTPS router and learn `X-Forwarded-Proto: https`;
//! `git push` over https works with GIT_SSL_CAINFO (the server's own hook
//! pins the certificate); `wpaas login` takes the token from standard input
//! and saves it only when the server accepts it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use wpaas_tests::{example, output_with_stdin, text, wpaas_bin, Server};

/// A test CA (`ca.pem`) and a certificate it signed for localhost, the
/// test apps' hostnames and 127.0.0.1 (`cert.pem`, `key.pem`), in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "wpaas test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![
        "localhost".to_string(),
        // webpki refuses a wildcard right below a one-label name
        // (*.localhost), so the apps are named.
        "echo.localhost".to_string(),
        "hello.localhost".to_string(),
        "127.0.0.1".to_string(),
    ])
    .unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();

    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

fn tls_server(home: &Path, pki: &Pki) -> Server {
    let server = Server::start_with(
        home,
        &[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(server.scheme, "https");
    server
}

/// An https client trusting only the test CA, which finds `app.localhost`
/// at the router.
fn https_client(pki: &Pki, app: &str, router: std::net::SocketAddr) -> reqwest::blocking::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .resolve(&format!("{app}.localhost"), router)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

#[test]
fn the_cli_deploys_over_https_with_the_ca_and_refuses_the_server_without_it() {
    let home = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let pki = make_pki(certs.path());
    std::fs::copy(example("echo"), src.path().join("echo.wasm")).unwrap();
    let server = tls_server(home.path(), &pki);

    // Without the CA: one error line with the reason, one hint line.
    let out = server.cli(src.path(), &["apps"]);
    let refused = text(&out);
    assert!(!out.status.success(), "{refused}");
    let lines: Vec<&str> = refused.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{refused}");
    assert!(lines[0].starts_with("error: "), "{refused}");
    assert!(lines[1].starts_with("hint: "), "{refused}");
    assert!(refused.contains("--ca FILE"), "{refused}");
    assert!(refused.contains("certificate"), "{refused}");
    println!("without the CA: {}", refused.trim());

    // With it (flag or environment).
    let ca = pki.ca.to_str().unwrap();
    let out = server.cli(src.path(), &["apps:create", "echo", "--ca", ca]);
    assert!(out.status.success(), "{}", text(&out));
    let out = server
        .command(src.path(), &["deploy", "-a", "echo"])
        .env("WPAAS_CA", ca)
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Released v1: https://echo.localhost:"),
        "{log}"
    );

    // The app over the HTTPS router, by name (one of the certificate's
    // names), told the request came over https.
    let response = https_client(&pki, "echo", server.router)
        .get(format!(
            "https://echo.localhost:{}/hi",
            server.router.port()
        ))
        .header("x-forwarded-proto", "http")
        .send();
    let response = match response {
        Ok(r) => r,
        Err(e) => panic!("the HTTPS router did not answer: {e:?}"),
    };
    assert_eq!(response.status(), 200);
    let echoed: serde_json::Value = response.json().unwrap();
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https", "{echoed}");

    // Plain HTTP to the HTTPS ports gets nothing served.
    let plain = reqwest::blocking::Client::new()
        .get(format!("http://{}/apps", server.api))
        .send();
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP was served"
    );
}

#[test]
fn git_push_over_https_with_git_ssl_cainfo() {
    let home = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let git_home = tempfile::tempdir().unwrap();
    let pki = make_pki(certs.path());
    let server = tls_server(home.path(), &pki);
    let ca = pki.ca.to_str().unwrap();

    let git = |args: &[&str], cainfo: Option<&str>| {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(repo.path())
            .env("HOME", git_home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("WPAAS_HOME", &server.home)
            .env_remove("GIT_SSL_CAINFO")
            .stdin(Stdio::null());
        if let Some(cainfo) = cainfo {
            cmd.env("GIT_SSL_CAINFO", cainfo);
        }
        cmd.output().unwrap()
    };
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    ok(git(&["init", "-q", "--initial-branch=main"], None));
    ok(git(&["config", "user.email", "t@example.com"], None));
    ok(git(&["config", "user.name", "t"], None));
    std::fs::copy(example("hello"), repo.path().join("hello.wasm")).unwrap();
    ok(git(&["add", "."], None));
    ok(git(&["commit", "-qm", "hello"], None));
    let out = server
        .command(repo.path(), &["apps:create", "hello", "--ca", ca])
        .env("HOME", git_home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let url = format!("https://{}", server.api);
    let remote = ok(git(&["remote", "get-url", "wpaas"], None));
    assert_eq!(remote.trim(), format!("{url}/git/hello.git"));
    // git:remote told git the CA for this server; drop that to show
    // what a user without it needs.
    ok(git(
        &["config", "--unset", &format!("http.{url}/.sslCAInfo")],
        None,
    ));

    let refused = git(&["push", "wpaas", "main"], None);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).to_lowercase().contains("certificate"),
        "{}",
        text(&refused)
    );

    let pushed = ok(git(&["push", "wpaas", "main"], Some(ca)));
    assert!(pushed.contains("Released v1"), "{pushed}");
    let body = https_client(&pki, "hello", server.router)
        .get(format!("https://hello.localhost:{}/", server.router.port()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("Hello"), "{body}");
}

/// `wpaas login ARGS…` with `stdin` as its input, in a client home of its
/// own (no server token file, no environment pointing at a server).
fn login(client_home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(wpaas_bin());
    command
        .arg("login")
        .args(args)
        .env("WPAAS_HOME", client_home)
        .env_remove("WPAAS_API")
        .env_remove("WPAAS_TOKEN")
        .env_remove("WPAAS_CA");
    output_with_stdin(&mut command, stdin)
}

#[test]
fn login_reads_the_token_from_stdin_and_saves_it_only_when_the_server_accepts_it() {
    let home = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let client_home = tempfile::tempdir().unwrap();
    let pki = make_pki(certs.path());
    let server = tls_server(home.path(), &pki);
    let url = format!("https://{}", server.api);
    let ca = pki.ca.to_str().unwrap();
    let credentials = client_home.path().join("credentials.json");

    let out = login(client_home.path(), &[&url, "--ca", ca], "not-the-token\n");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("Logged in"), "{}", text(&out));
    assert!(text(&out).contains("refused this token"), "{}", text(&out));
    assert!(!credentials.exists());

    let token = std::fs::read_to_string(server.home.join("token")).unwrap();
    let out = login(client_home.path(), &[&url, "--ca", ca], &token);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("Logged in to {url}")),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(token.trim()), "the token was printed");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Later commands use the saved server, token and CA.
    let out = Command::new(wpaas_bin())
        .args(["apps:create", "saved"])
        .current_dir(client_home.path())
        .env("WPAAS_HOME", client_home.path())
        .env_remove("WPAAS_API")
        .env_remove("WPAAS_TOKEN")
        .env_remove("WPAAS_CA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // The token is not an argument any more.
    let out = login(client_home.path(), &[&url, "--token", token.trim()], "");
    assert!(!out.status.success(), "{}", text(&out));
}
