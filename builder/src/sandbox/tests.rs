//! These run real bubblewrap sandboxes (bwrap must be installed).

use std::fs;
use std::time::{Duration, Instant};

use super::bwrap::BUILD_UID;
use super::*;
use crate::exec::RunError;

fn sandbox(limits: Limits) -> Sandbox {
    Sandbox::new(limits).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `script` with `sh -c` in a step; returns its exit code and output.
fn sh(
    sandbox: &Sandbox,
    script: &str,
    setup: impl FnOnce(&mut Step),
) -> (Option<i32>, Vec<String>) {
    let mut step = sandbox.step("/bin/sh");
    step.arg("-c").arg(script);
    setup(&mut step);
    let mut lines = Vec::new();
    let status = sandbox
        .run(
            step,
            Instant::now() + Duration::from_secs(60),
            &mut |_, l| lines.push(l.to_string()),
        )
        .unwrap();
    (status.code(), lines)
}

/// Processes whose command line is exactly `words`.
fn processes(words: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = words
        .iter()
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

#[test]
fn a_step_sees_only_its_directories_and_a_cleared_environment() {
    let sb = sandbox(Limits::default());
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    fs::write(work.join("input"), "from the host\n").unwrap();
    std::env::set_var("WPAAS_SANDBOX_TEST_SECRET", "hunter2");
    let (code, lines) = sh(
        &sb,
        "id -u; cat input; echo out > output; ls / | tr '\\n' ' '; echo; env | sort | tr '\\n' ' '; echo; \
         ls /root 2>&1 | head -1; touch /usr/x 2>&1 | head -1; touch /x 2>&1 | head -1; \
         cat /proc/1/environ | tr '\\0' ' '; echo; unshare -U true 2>&1 | head -1; \
         echo tmp > /tmp/t && cat /tmp/t; echo home > $HOME/h && cat $HOME/h",
        |step| {
            let w = step.bind(&work, "/workspace", true);
            step.cwd(w);
        },
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(lines[0], BUILD_UID.to_string());
    assert_eq!(lines[1], "from the host");
    let root: Vec<&str> = lines[2].split_whitespace().collect();
    for name in &root {
        assert!(
            [
                "bin",
                "dev",
                "etc",
                "home",
                "lib",
                "lib64",
                "opt",
                "proc",
                "sbin",
                "tmp",
                "usr",
                "workspace",
                "lib32",
                "libx32"
            ]
            .contains(name),
            "unexpected /{name} in {root:?}"
        );
    }
    let env = &lines[3];
    assert!(
        !env.contains("hunter2") && !env.contains("CARGO_PKG"),
        "{env}"
    );
    assert!(
        env.contains("HOME=/home/build") && env.contains("STACK=wpaas"),
        "{env}"
    );
    assert!(lines[4].contains("No such file"), "{lines:#?}");
    assert!(lines[5].contains("Read-only file system"), "{lines:#?}");
    assert!(lines[6].contains("Read-only file system"), "{lines:#?}");
    assert!(!lines[7].contains("hunter2"), "{lines:#?}");
    assert!(
        !lines[8].is_empty(),
        "a nested user namespace was allowed: {lines:#?}"
    );
    assert_eq!(lines[9..], ["tmp", "home"]);
    // Written inside as uid 65534, owned by the server's user outside.
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(work.join("output")).unwrap();
    let ours = fs::metadata(&work).unwrap().uid();
    assert_eq!(meta.uid(), ours);
    fs::remove_dir_all(&work).unwrap();
}

#[test]
fn nothing_a_step_starts_outlives_it() {
    let sb = sandbox(Limits::default());
    // Exits at once, leaving a detached sleep behind.
    let (code, lines) = sh(
        &sb,
        "setsid sleep 301.25 >/dev/null 2>&1 & echo started",
        |_| {},
    );
    assert_eq!(
        (code, lines.as_slice()),
        (Some(0), &["started".to_string()][..])
    );
    // Killed at its deadline.
    let mut step = sb.step("/bin/sh");
    step.arg("-c")
        .arg("setsid sleep 302.25 >/dev/null 2>&1 & echo started; sleep 30");
    let err = sb
        .run(
            step,
            Instant::now() + Duration::from_millis(1500),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(matches!(err, RunError::TimedOut));
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = [
            processes(&["sleep", "301.25"]),
            processes(&["sleep", "302.25"]),
        ]
        .concat();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "left running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_step_cannot_reach_the_hosts_loopback_even_with_network() {
    let sb = sandbox(Limits::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "for host in 127.0.0.1 10.0.2.2; do \
         if bash -c \"echo hi > /dev/tcp/$host/{port}\" 2>/dev/null; then echo \"$host open\"; else echo \"$host refused\"; fi; done"
    );
    for network in [false, true] {
        let (code, lines) = sh(&sb, &script, |step| {
            step.network(network);
        });
        assert_eq!(code, Some(0));
        assert!(
            lines.iter().any(|l| l == "127.0.0.1 refused")
                && lines.iter().any(|l| l == "10.0.2.2 refused"),
            "network {network}: {lines:?}"
        );
    }
}

#[test]
fn output_past_the_limit_is_dropped_and_counted() {
    let sb = sandbox(Limits {
        output: 100,
        ..Limits::default()
    });
    let (code, lines) = sh(&sb, "for i in $(seq 1 1000); do echo line-$i; done", |_| {});
    assert_eq!(code, Some(0));
    assert_eq!(lines[0], "line-1");
    assert!(lines.len() < 20, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("output limit of 100 bytes reached")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().contains("more lines"), "{lines:?}");
}

#[test]
fn memory_and_process_limits_hold() {
    let sb = sandbox(Limits {
        memory: 64 << 20,
        pids: 32,
        ..Limits::default()
    });
    if !sb.has_cgroups() {
        eprintln!("no writable cgroup hierarchy here: only the rlimit fallback applies");
    }
    // 256 MiB in a shell variable.
    let (code, lines) = sh(
        &sb,
        "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo ${#x}",
        |_| {},
    );
    assert_ne!(code, Some(0), "{lines:?}");
    if sb.has_cgroups() {
        assert!(
            lines.iter().any(|l| l.contains("hit its memory limit")),
            "{lines:?}"
        );
        let (_, lines) = sh(
            &sb,
            "for i in $(seq 1 100); do sleep 5 & done; wait",
            |_| {},
        );
        assert!(
            lines.iter().any(|l| l.contains("hit its process limit")),
            "{lines:?}"
        );
    }
}
