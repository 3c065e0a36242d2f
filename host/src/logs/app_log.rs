//! The handle to one app's log as one process writes it. Everything that
//! produces app-log lines holds one: a replica's prints (`web.1`,
//! `worker.2`), a one-off run's (`run.3`), a deploy's output (`build`).
//! It is the runtime's [`LineSink`], and, for replicas the runtime names
//! itself, its [`ProcessLines`].

use std::sync::Arc;

use super::LogHub;
use crate::runtime::output::{LineSink, ProcessLines};

/// `app`'s log, written as `process`. Cheap to clone (three `Arc`s); a
/// line never waits (see [`LogHub::push`]).
#[derive(Clone)]
pub struct AppLog {
    hub: Arc<LogHub>,
    app: Arc<str>,
    process: Arc<str>,
}

impl AppLog {
    /// `app`'s log in `hub`, written as `process`.
    pub fn new(hub: Arc<LogHub>, app: &str, process: &str) -> Self {
        Self {
            hub,
            app: app.into(),
            process: process.into(),
        }
    }

    /// Adds `message` to the app's log as this handle's process.
    pub fn line(&self, message: &str) {
        self.hub.push(&self.app, &self.process, message);
    }

    /// The same app's log, written as `process` (a replica: `web.2`).
    pub fn as_process(&self, process: &str) -> Self {
        Self {
            hub: self.hub.clone(),
            app: self.app.clone(),
            process: process.into(),
        }
    }
}

impl LineSink for AppLog {
    fn line(&self, line: &str) {
        AppLog::line(self, line);
    }
}

impl ProcessLines for AppLog {
    fn process(&self, process: &str) -> Arc<dyn LineSink> {
        Arc::new(self.as_process(process))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Filter;

    /// `PROCESS: MESSAGE` of each line of `app`.
    fn lines(hub: &LogHub, app: &str) -> Vec<String> {
        let (kept, _) = hub.read(app, 100, &Filter::default(), false);
        kept.iter()
            .map(|l| format!("{}: {}", l.process, l.message))
            .collect()
    }

    #[test]
    fn a_line_reaches_the_app_as_its_process() {
        let hub = Arc::new(LogHub::in_memory(10));
        let log = hub.app_log("a", "build");
        log.line("-----> Building");
        log.as_process("web.2").line("listening");
        // Through the runtime's traits, as a replica's prints arrive.
        let replicas: Arc<dyn ProcessLines> = Arc::new(log.clone());
        replicas.process("worker.1").line("working");
        let sink: Arc<dyn LineSink> = Arc::new(log);
        sink.line("done");
        assert_eq!(
            lines(&hub, "a"),
            [
                "build: -----> Building",
                "web.2: listening",
                "worker.1: working",
                "build: done",
            ]
        );
        assert!(lines(&hub, "b").is_empty());
    }
}
