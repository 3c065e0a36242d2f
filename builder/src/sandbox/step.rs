//! One build step as its caller describes it: program, arguments,
//! directories it sees, environment, network.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One build step: a program, its arguments, and what it may see.
pub(crate) struct Step {
    pub(super) sandboxed: bool,
    pub(super) program: OsString,
    pub(super) args: Vec<OsString>,
    pub(super) cwd: Option<PathBuf>,
    pub(super) binds: Vec<Bind>,
    pub(super) env: Vec<(String, OsString)>,
    pub(super) network: bool,
}

pub(super) struct Bind {
    pub(super) host: PathBuf,
    pub(super) inside: PathBuf,
    pub(super) writable: bool,
}

impl Step {
    /// Makes the host directory `host` visible at `inside`; returns the
    /// path the step sees it at (the host path when not sandboxed).
    pub(crate) fn bind(&mut self, host: &Path, inside: &str, writable: bool) -> PathBuf {
        self.binds.push(Bind {
            host: host.to_path_buf(),
            inside: PathBuf::from(inside),
            writable,
        });
        if self.sandboxed {
            PathBuf::from(inside)
        } else {
            host.to_path_buf()
        }
    }

    /// Sets the program (a path the step sees, or a name in `PATH`).
    pub(crate) fn program(&mut self, program: impl Into<OsString>) -> &mut Self {
        self.program = program.into();
        self
    }

    /// Appends an argument.
    pub(crate) fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// Runs the step in `dir` (a path the step sees, from [`Step::bind`]).
    pub(crate) fn cwd(&mut self, dir: PathBuf) -> &mut Self {
        self.cwd = Some(dir);
        self
    }

    /// Sets an environment variable.
    pub(crate) fn env(&mut self, key: &str, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Lets the step reach the network (not the host's loopback).
    pub(crate) fn network(&mut self, allowed: bool) -> &mut Self {
        self.network = allowed;
        self
    }
}
