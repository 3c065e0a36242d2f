//! `wpaas run [--] MODULE.wasm ARGS…`: a one-off process from the current
//! release, its output streamed here, its exit code ours.

use std::io::Write;

use anyhow::{bail, Result};
use std::collections::BTreeMap;

use wpaas_api::run::{Fd, RunLine, RunRequest, RunResult};

use super::target::AppArgs;
use crate::client::read_result_stream;
use crate::output;

/// Run a one-off command (a .wasm in the current release) with the app's
/// config; exits with its exit code. With --json the last line on stdout
/// is the result (exit code, process, status).
#[derive(clap::Args)]
pub struct Run {
    /// Extra environment for this run only, K=V (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// The module (a path in the slug, e.g. worker.wasm) and its
    /// arguments. Everything from the module on is the module's, flags too
    /// (`run worker.wasm once -v`); `--` before it is optional.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "MODULE.wasm ARGS"
    )]
    command: Vec<String>,
    #[command(flatten)]
    target: AppArgs,
}

impl Run {
    pub fn run(self) -> Result<()> {
        let app = self.target.app()?;
        let mut env = BTreeMap::new();
        for pair in &self.env {
            let Some((key, value)) = pair.split_once('=') else {
                bail!("--env {pair:?} is not K=V");
            };
            env.insert(key.to_string(), value.to_string());
        }
        let response = self.target.api.client()?.post_streaming(
            &format!("/apps/{app}/run"),
            &RunRequest {
                command: self.command,
                env,
            },
        )?;
        let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
        let result = read_result_stream::<RunResult>(response, |line| {
            let line = RunLine::decode(line);
            match line.fd {
                Fd::Stderr => {
                    let _ = writeln!(stderr, "{}", line.text);
                }
                Fd::Stdout => {
                    let _ = writeln!(stdout, "{}", line.text);
                    let _ = stdout.flush();
                }
            }
        })?;
        let Some(result) = result else {
            bail!("the server ended the run without an exit status");
        };
        if self.target.api.json {
            output::print_json(&result)?;
        }
        let code = result.exit;
        if code != 0 {
            eprintln!("{} {}", result.process, result.status);
        }
        std::process::exit(code);
    }
}
