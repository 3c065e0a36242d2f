//! The README cannot drift from the program: every ```` ```console ````
//! block in it is a session this test runs, command by command, against a
//! fresh `wpaas server`, comparing what each command prints with the lines
//! the README shows under it.
//!
//! A block's `$ ` lines are commands, run by `sh` in a fresh directory
//! (`$ cd DIR` moves it) with the test's `wpaas` first on PATH; the lines
//! up to the next command are its output (stdout and stderr together, as
//! a terminal shows them). An output line `...` stands for any number of
//! lines. Both sides pass through the golden filter (times, ports,
//! digests become placeholders), so the README can show realistic values.
//! The README's addresses are the defaults (router 127.0.0.1:8080, API
//! 127.0.0.1:7070); commands are pointed at the test server's ports.

use std::path::PathBuf;
use std::process::Command;

use wpaas_tests::golden::filter;
use wpaas_tests::{workspace_root, wpaas_bin, Server};

/// One `$ COMMAND` and the output the README shows for it.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    expected: Vec<String>,
}

/// Each console block of `readme`: its first line's number and its steps.
fn console_blocks(readme: &str) -> Vec<(usize, Vec<Step>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<Step>)> = None;
    for (index, line) in readme.lines().enumerate() {
        let number = index + 1;
        match &mut current {
            None if line.trim_end() == "```console" => current = Some((number, Vec::new())),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some((_, steps)) => match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step {
                    line: number,
                    command: command.to_string(),
                    expected: Vec::new(),
                }),
                None => steps
                    .last_mut()
                    .unwrap_or_else(|| panic!("README.md:{number}: output before any `$ ` command"))
                    .expected
                    .push(line.to_string()),
            },
        }
    }
    assert!(
        current.is_none(),
        "README.md: a console block is not closed"
    );
    blocks
}

/// Whether `actual` is what `expected` shows, `...` standing for any
/// lines. Both are filtered already.
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line == first && matches(rest, more)),
    }
}

fn lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = filter(text)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn run_block(first_line: usize, steps: &[Step]) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(home.path()).unwrap();
    let path = format!(
        "{}:{}",
        wpaas_bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut dir: PathBuf = work.path().to_path_buf();
    for step in steps {
        if let Some(to) = step.command.strip_prefix("cd ") {
            dir = dir.join(to.trim());
            assert!(dir.is_dir(), "README.md:{}: no directory {to}", step.line);
            continue;
        }
        let command = step
            .command
            .replace(
                "localhost:8080",
                &format!("localhost:{}", server.router.port()),
            )
            .replace("127.0.0.1:8080", &server.router.to_string())
            .replace("127.0.0.1:7070", &server.api.to_string())
            // A terminal shows curl no progress meter; a pipe would.
            .replace("curl ", "curl -sS ");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} 2>&1"))
            .current_dir(&dir)
            .env("PATH", &path)
            .env("WPAAS_HOME", home.path())
            .env("WPAAS_API", format!("http://{}", server.api))
            .env_remove("WPAAS_APP")
            .env_remove("WPAAS_TOKEN")
            .output()
            .unwrap();
        let actual = lines(&String::from_utf8_lossy(&out.stdout));
        let expected = lines(&step.expected.join("\n"));
        assert!(
            matches(&expected, &actual),
            "README.md:{} (the block at line {first_line}): `{}` printed\n{}\n\nbut the README shows\n{}",
            step.line,
            step.command,
            actual.join("\n"),
            expected.join("\n"),
        );
    }
}

#[test]
fn every_console_block_in_the_readme_runs_as_written() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let blocks = console_blocks(&readme);
    assert!(!blocks.is_empty(), "the README has no console block");
    for (line, steps) in &blocks {
        run_block(*line, steps);
    }
}

#[test]
fn the_output_matcher_skips_only_where_told() {
    let v = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(matches(&v(&["a", "...", "z"]), &v(&["a", "b", "c", "z"])));
    assert!(matches(&v(&["...", "z"]), &v(&["z"])));
    assert!(matches(&v(&["a", "..."]), &v(&["a", "b"])));
    assert!(!matches(&v(&["a", "z"]), &v(&["a", "b", "z"])));
    assert!(!matches(&v(&["a"]), &v(&["a", "b"])));
    assert!(!matches(&v(&["a", "...", "z"]), &v(&["a", "b"])));
    let blocks = console_blocks("x\n```console\n$ wpaas apps\n=== Apps\n$ cd d\n```\n");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].0, 2);
    assert_eq!(blocks[0].1[0].command, "wpaas apps");
    assert_eq!(blocks[0].1[0].expected, ["=== Apps"]);
    assert_eq!(blocks[0].1[1].command, "cd d");
}
