//! How records change, the same in every backend: a backend reads the
//! records inside its transaction, applies one of these, and writes the
//! result in the same transaction. Keeping them here keeps the backends'
//! answers identical (the conformance suite checks they are).

use super::records::{
    App, Build, BuildOutput, BuildSource, BuildStatus, Release, ReleaseDraft, ReleaseStatus,
};
use super::validate::validate_config_key;
use super::{AppStore, Change, ReleaseStore, StoreError};

/// Per-app sequence numbers, kept beside the app (not a public record).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Counters {
    /// Highest release version ever allocated.
    pub releases: u32,
    /// Highest per-app build sequence number.
    pub builds: u64,
}

/// The reason an interrupted record is failed with.
pub(crate) const INTERRUPTED: &str = "interrupted: the server stopped before it finished";

/// After an `update_app` closure: the fields the store owns (`name`,
/// `created_at`, `domains`, `current`) are put back as they were.
pub(crate) fn restore_store_owned(before: &App, app: &mut App) {
    app.name = before.name.clone();
    app.created_at = before.created_at.clone();
    app.domains = before.domains.clone();
    app.current = before.current;
}

/// Release `version` of `app` from a draft, `Pending`; `InvalidConfigKey`
/// if a config key is bad (nothing may be allocated then).
pub(crate) fn new_release(
    app: &str,
    version: u32,
    draft: ReleaseDraft,
    created_at: &str,
) -> Result<Release, StoreError> {
    for k in draft.config.keys() {
        validate_config_key(k)?;
    }
    Ok(Release {
        app: app.to_string(),
        version,
        slug: draft.slug,
        config: draft.config,
        process_types: draft.process_types,
        argv: draft.argv,
        description: draft.description,
        created_at: created_at.to_string(),
        status: ReleaseStatus::Pending,
        by: draft.by,
    })
}

/// Finishes a pending release (and points `app` at it on success);
/// `ReleaseFinished` if it is not pending.
pub(crate) fn finish_release(
    app: &mut App,
    release: &mut Release,
    outcome: &Result<(), String>,
) -> Result<(), StoreError> {
    if release.status != ReleaseStatus::Pending {
        return Err(StoreError::ReleaseFinished {
            app: release.app.clone(),
            version: release.version,
        });
    }
    match outcome {
        Ok(()) => {
            release.status = ReleaseStatus::Succeeded;
            app.current = Some(release.version);
        }
        Err(reason) => {
            release.status = ReleaseStatus::Failed {
                reason: reason.clone(),
            };
        }
    }
    Ok(())
}

/// A new `Running` build.
pub(crate) fn new_build(id: String, app: &str, source: &BuildSource, started_at: &str) -> Build {
    Build {
        id,
        app: app.to_string(),
        status: BuildStatus::Running,
        started_at: started_at.to_string(),
        finished_at: None,
        release: None,
        slug: None,
        commit: source.commit.clone(),
        buildpack: source.buildpack.clone(),
    }
}

/// Finishes a running build; `false` (and no change) if it was finished
/// already, whose first outcome stays.
pub(crate) fn finish_build(
    build: &mut Build,
    outcome: &Result<BuildOutput, String>,
    finished_at: &str,
) -> bool {
    if build.status != BuildStatus::Running {
        return false;
    }
    build.finished_at = Some(finished_at.to_string());
    match outcome {
        Ok(out) => {
            build.status = BuildStatus::Succeeded;
            build.slug = out.slug.clone();
            build.release = out.release;
        }
        Err(reason) => {
            build.status = BuildStatus::Failed {
                reason: reason.clone(),
            }
        }
    }
    true
}

/// Fails a release left pending; `None` if it was finished.
pub(crate) fn interrupt_release(r: &mut Release) -> Option<Change> {
    if r.status != ReleaseStatus::Pending {
        return None;
    }
    r.status = ReleaseStatus::Failed {
        reason: INTERRUPTED.to_string(),
    };
    Some(Change::Release {
        app: r.app.clone(),
        version: r.version,
    })
}

/// Fails a build left running; `None` if it was finished.
pub(crate) fn interrupt_build(b: &mut Build, now: &str) -> Option<Change> {
    if b.status != BuildStatus::Running {
        return None;
    }
    b.status = BuildStatus::Failed {
        reason: INTERRUPTED.to_string(),
    };
    b.finished_at = Some(now.to_string());
    Some(Change::Build {
        app: b.app.clone(),
        id: b.id.clone(),
    })
}

/// What `release` answers for a version not stored: `NoSuchApp` if the
/// app is not, else `NoSuchRelease`.
pub(crate) fn missing_release(
    store: &(impl AppStore + ?Sized),
    app: &str,
    version: u32,
) -> Result<Release, StoreError> {
    store.app(app)?;
    Err(StoreError::NoSuchRelease {
        app: app.to_string(),
        version,
    })
}

/// `current_release` from the app's record and `release`.
pub(crate) fn current_release(
    store: &(impl AppStore + ReleaseStore + ?Sized),
    app: &str,
) -> Result<Option<Release>, StoreError> {
    match store.app(app)?.current {
        Some(v) => match store.release(app, v) {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NoSuchRelease { .. }) => Err(StoreError::Corrupt(format!(
                "app {app} points at missing release v{v}"
            ))),
            Err(e) => Err(e),
        },
        None => Ok(None),
    }
}

/// The changes `finish_release` announces.
pub(crate) fn release_finished(app: &str, version: u32, ok: bool) -> Vec<Change> {
    let mut changes = vec![Change::Release {
        app: app.to_string(),
        version,
    }];
    if ok {
        changes.push(Change::App(app.to_string()));
    }
    changes
}
