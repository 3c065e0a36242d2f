//! One replica at a time (`ps:restart web.2`, `ps:stop worker.1`,
//! `ps:stop run.3`), as on Heroku: a replica of the formation that is
//! stopped is started again fresh (the formation still asks for it;
//! `ps:scale` runs fewer), the others keep serving; a one-off run that is
//! stopped ends.

use anyhow::Result;

use super::{invalid, Platform};
use crate::control::error::PlatformError;

/// A process name as `ps` shows it: `web` (a type) or `web.2` (a replica).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessName<'a> {
    /// `web`.
    pub kind: &'a str,
    /// `2` of `web.2`; `None`: every replica of the type.
    pub number: Option<usize>,
}

impl<'a> ProcessName<'a> {
    /// Reads `web` or `web.2`; anything else after the dot is refused.
    pub fn parse(name: &'a str) -> Result<Self, PlatformError> {
        let Some((kind, number)) = name.split_once('.') else {
            return Ok(Self {
                kind: name,
                number: None,
            });
        };
        match number.parse::<usize>() {
            Ok(number) if number > 0 && !kind.is_empty() => Ok(Self {
                kind,
                number: Some(number),
            }),
            _ => Err(PlatformError::invalid(format!(
                "{name:?} is not a process: name a type (web) or one of its replicas (web.1), as `wpaas ps` lists them"
            ))),
        }
    }
}

impl Platform {
    /// Starts the replica `kind.n` of the current release afresh; the
    /// others carry on. Its name must be one `ps` lists on this server.
    pub(super) fn restart_replica(&self, app: &str, kind: &str, n: usize) -> Result<()> {
        let name = format!("{kind}.{n}");
        if self.clustered() {
            return Err(invalid(format!(
                "restarting one replica is not supported in a cluster yet; `wpaas ps:restart {kind}` restarts every {kind} replica"
            )));
        }
        let restarted = match kind {
            "web" => self
                .table
                .app(app)
                .and_then(|route| route.web.clone())
                .is_some_and(|web| web.restart_replica(n)),
            _ => self.supervisor.restart_replica(app, kind, &name),
        };
        if restarted {
            return Ok(());
        }
        Err(PlatformError::not_found(format!(
            "{name} is not running in {app} (running: {}); see `wpaas ps`",
            self.running_names(app, kind)
        ))
        .into())
    }

    /// Ends the one-off run `run.n`.
    pub(crate) fn stop_run(&self, app: &str, n: usize) -> Result<()> {
        let stopped = u32::try_from(n).is_ok_and(|n| self.supervisor.stop_run(app, n));
        if stopped {
            return Ok(());
        }
        Err(PlatformError::not_found(format!(
            "run.{n} is not running in {app} (one-off runs: {}); see `wpaas ps`",
            self.running_names(app, "run")
        ))
        .into())
    }

    /// `web.1, web.2`, or `none`.
    fn running_names(&self, app: &str, kind: &str) -> String {
        let names: Vec<String> = match kind {
            "web" => self
                .web_status(app)
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.name)
                .collect(),
            "run" => self
                .supervisor
                .runs(app)
                .into_iter()
                .map(|r| r.name)
                .collect(),
            _ => self
                .supervisor
                .status(app, kind)
                .into_iter()
                .map(|r| r.name)
                .collect(),
        };
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_names_are_a_type_or_one_replica() {
        let parsed = |s| ProcessName::parse(s).map(|p| (p.kind, p.number));
        assert_eq!(parsed("web").unwrap(), ("web", None));
        assert_eq!(parsed("worker.12").unwrap(), ("worker", Some(12)));
        for bad in ["web.", "web.x", "web.0", ".1", "web.-1"] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
    }
}
