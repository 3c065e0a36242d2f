//! `wpaas` — the command-line client and (embedded) server.
//!
//! Imports go one way: `main` → `commands` → {`client`, `output`,
//! `dotenv`, `git_remote`, `home`, `signals`, `tls`, `error`}, and among those
//! `output` → `client` → {`home`, `tls`, `error`}.

mod client;
mod commands;
mod dotenv;
mod error;
mod git_remote;
mod home;
mod output;
mod signals;
mod tls;

use std::io::IsTerminal;

use clap::Parser;

/// Heroku-style platform whose processes are WebAssembly sandboxes.
#[derive(Parser)]
#[command(name = "wpaas", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() {
    // Errors are shown as one line, never with a backtrace, so capturing one
    // for every error value (which RUST_BACKTRACE=1 turns on, and wasmtime
    // creates errors on ordinary paths such as closed streams) is pure cost.
    // Panics still honour RUST_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WPAAS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a log file or a pipe
        // gets plain text.
        .with_ansi(output::colour(std::io::stderr().is_terminal()))
        .with_target(false)
        .init();
    if let Err(err) = cli.command.run() {
        // One line: the cause chain, each cause once, never a backtrace;
        // then a hint where there is one.
        let colour = output::colour(std::io::stderr().is_terminal());
        eprintln!("{}", error::paint(&error::render(&err), colour));
        std::process::exit(1);
    }
}
