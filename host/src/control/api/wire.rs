//! The one place store records become what the API answers (`wpaas-api`
//! types). Records are what the server keeps; these are what clients read:
//! a field added to a record reaches the wire only when it is added here.

use wpaas_api::{apps, builds, ps, releases};

use crate::control::store;

impl From<store::App> for apps::App {
    fn from(app: store::App) -> Self {
        apps::App {
            name: app.name,
            created_at: app.created_at,
            buildpack: app.buildpack,
            healthcheck: app.healthcheck.into(),
            domains: app.domains,
            formation: app.formation,
            autoscale: app.autoscale.map(Into::into),
            limits: app
                .limits
                .into_iter()
                .map(|(kind, limits)| (kind, limits.into()))
                .collect(),
            current: app.current,
            maintenance: app.maintenance,
        }
    }
}

impl From<store::Healthcheck> for apps::Healthcheck {
    fn from(check: store::Healthcheck) -> Self {
        apps::Healthcheck {
            enabled: check.enabled,
            path: check.path,
            timeout_ms: check.timeout_ms,
        }
    }
}

impl From<store::Autoscale> for ps::Autoscale {
    fn from(spec: store::Autoscale) -> Self {
        ps::Autoscale {
            min: spec.min,
            max: spec.max,
            target: spec.target,
            cooldown_ms: spec.cooldown_ms,
            idle_ms: spec.idle_ms,
        }
    }
}

impl From<store::ProcessLimits> for ps::ProcessLimits {
    fn from(limits: store::ProcessLimits) -> Self {
        ps::ProcessLimits {
            memory_bytes: limits.memory_bytes,
            timeout_ms: limits.timeout_ms,
            concurrency: limits.concurrency,
        }
    }
}

impl From<store::Release> for releases::Release {
    /// The stored argv stays on the server: clients see each type's
    /// command as the Procfile wrote it.
    fn from(release: store::Release) -> Self {
        releases::Release {
            app: release.app,
            version: release.version,
            slug: release.slug,
            config: release.config,
            process_types: release.process_types,
            description: release.description,
            created_at: release.created_at,
            by: release.by,
            status: match release.status {
                store::ReleaseStatus::Pending => releases::ReleaseStatus::Pending,
                store::ReleaseStatus::Succeeded => releases::ReleaseStatus::Succeeded,
                store::ReleaseStatus::Failed { reason } => {
                    releases::ReleaseStatus::Failed { reason }
                }
            },
        }
    }
}

impl From<store::Build> for builds::Build {
    fn from(build: store::Build) -> Self {
        builds::Build {
            id: build.id,
            app: build.app,
            status: match build.status {
                store::BuildStatus::Running => builds::BuildStatus::Running,
                store::BuildStatus::Succeeded => builds::BuildStatus::Succeeded,
                store::BuildStatus::Failed { reason } => builds::BuildStatus::Failed { reason },
            },
            started_at: build.started_at,
            finished_at: build.finished_at,
            release: build.release,
            slug: build.slug,
            commit: build.commit,
            buildpack: build.buildpack,
        }
    }
}

/// A supervised process (worker, one-off run) as `ps` lists it.
impl From<crate::control::supervisor::ProcessStatus> for ps::Replica {
    fn from(process: crate::control::supervisor::ProcessStatus) -> Self {
        ps::Replica {
            name: process.name,
            state: process.state.to_string(),
            since: process.since,
            in_flight: None,
            served: None,
            restarts: process.restarts,
            last_exit: process.last_exit,
            command: process.command,
            node: None,
        }
    }
}

/// A running web replica as `ps` lists it: always up, with its numbers.
impl From<crate::runtime::ReplicaStatus> for ps::Replica {
    fn from(replica: crate::runtime::ReplicaStatus) -> Self {
        ps::Replica {
            name: replica.name,
            state: "up".to_string(),
            since: humantime::format_rfc3339_seconds(replica.since).to_string(),
            in_flight: Some(replica.in_flight as u64),
            served: Some(replica.served),
            restarts: replica.restarts,
            last_exit: None,
            command: None,
            node: None,
        }
    }
}

/// Converts each record of a list.
pub fn all<R, T: From<R>>(records: Vec<R>) -> Vec<T> {
    records.into_iter().map(T::from).collect()
}
