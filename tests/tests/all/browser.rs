//! The dashboard in a real browser: Debian's Chromium, driven by
//! playwright-core (tests/browser/dashboard.mjs), against a real server
//! and an app deployed by the CLI. Screenshots land in
//! target/dashboard-screenshots (failure.png when a step fails).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wpaas_tests::{example, shared_cache_dir, text, workspace_root, Server};

/// A directory holding tests/browser's node_modules (`npm ci` from its
/// lockfile, once per lockfile: later runs find them installed) and a copy
/// of the script: Node resolves an ES module's imports next to the module,
/// not from the working directory or NODE_PATH.
fn browser_dir() -> PathBuf {
    let source = workspace_root().join("tests/browser");
    let dir = shared_cache_dir().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    // flock(1): test runs sharing the checkout install one at a time, and
    // a run never sees another's half-installed node_modules.
    let install = "cp \"$SOURCE/package.json\" \"$SOURCE/package-lock.json\" . \
        && { cmp -s package-lock.json .installed-lock && [ -d node_modules/playwright-core ] \
        || { npm ci --no-audit --no-fund && cp package-lock.json .installed-lock; }; }";
    let out = Command::new("flock")
        .arg(dir.join(".lock"))
        .args(["sh", "-c", install])
        .env("SOURCE", &source)
        // playwright-core downloads nothing; this makes sure of it.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("could not run flock/npm");
    assert!(out.status.success(), "npm ci failed:\n{}", text(&out));
    // Copied then renamed: a run starting node now never reads a half-copy.
    let part = dir.join(format!("dashboard.mjs.{}", std::process::id()));
    std::fs::copy(source.join("dashboard.mjs"), &part).unwrap();
    std::fs::rename(&part, dir.join("dashboard.mjs")).unwrap();
    dir
}

#[test]
fn a_real_chromium_signs_in_scales_configures_rolls_back_and_tails_logs() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: apt-get install chromium (or set CHROMIUM)"
    );
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(example("hello"), src.path().join("hello.wasm")).unwrap();
    let out = server.cli(src.path(), &["deploy", "-a", "hello"]);
    assert!(out.status.success(), "{}", text(&out));

    let dir = browser_dir();
    let shots = workspace_root().join("target/dashboard-screenshots");
    // Only this run's pictures (no stale failure.png).
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    // Output to files, not pipes: nobody reads a pipe while we wait.
    let stdout_path = home.path().join("browser-stdout.log");
    let stderr_path = home.path().join("browser-stderr.log");
    let mut child = Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .current_dir(&dir)
        .env("WPAAS_DASHBOARD", format!("http://{}/", server.api))
        .env("WPAAS_TOKEN", server.token())
        .env("WPAAS_ROUTER", format!("http://{}", server.router))
        .env("WPAAS_APP", "hello")
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("could not run node");
    // The script bounds itself (100 s); this is the backstop for a hung
    // node or browser.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    // Shown with --nocapture: each step's timing, the log latency.
    println!("{stdout}");
    let status = status.unwrap_or_else(|| {
        panic!("the browser run took over 120 s\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    assert!(
        status.success(),
        "the browser run failed ({status}); screenshots in {}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver stderr:\n{}",
        shots.display(),
        server.stderr()
    );

    let mut expected = vec![
        "apps.png",
        "overview.png",
        "config.png",
        "activity.png",
        "logs.png",
        "mobile-apps.png",
        "mobile-overview.png",
    ];
    // The Metrics tab is drawn only by dashboards that have one.
    if !stdout.contains("SKIPPED: no Metrics tab") {
        expected.push("metrics.png");
    }
    for name in expected {
        let bytes = std::fs::read(shots.join(name))
            .unwrap_or_else(|err| panic!("{name}: {err}\nstdout:\n{stdout}"));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name} is not a PNG ({} bytes)",
            bytes.len()
        );
    }
}
