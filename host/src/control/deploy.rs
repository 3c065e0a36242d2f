//! The deploy pipeline, top to bottom: take the app's lock, then either
//! release a commit built before from its slug, or build the upload
//! (buildpack, in a build slot and the sandbox) → pack the slug into the
//! store → release it (`Platform::release`: pending vN+1 → activate: load,
//! release phase, health check → swap the route) → record the build.
//! The HTTP side (receiving the upload, streaming lines) is the API's.

use anyhow::Context as _;

use super::keyed_lock::KeyGuard;
use super::platform::{build_dir, LogSink, Platform};

/// Takes the app's lock; tells the client when another deploy or change
/// holds it (a second `git push` waits for the first).
async fn lock_app(platform: &Platform, app: &str, log: &LogSink) -> KeyGuard {
    match platform.try_lock(app) {
        Some(guard) => guard,
        None => {
            log.send(format!(
                "-----> Waiting for another deploy of {app} to finish..."
            ));
            platform.lock(app).await
        }
    }
}

/// Releases the slug of `built` again, for a commit built before (pushing
/// an older commit, or the same one to a re-created branch).
async fn release_built(
    platform: &Platform,
    app: &str,
    built: &super::store::Build,
    log: &LogSink,
) -> anyhow::Result<(u32, String)> {
    let (Some(commit), Some(slug), Some(version)) = (&built.commit, &built.slug, built.release)
    else {
        anyhow::bail!("build {} has no slug to release", built.id);
    };
    let short = &commit[..7];
    let _pin = platform
        .pin_stored_slug(slug)
        .ok_or_else(|| anyhow::anyhow!("the slug of build {} was removed", built.id))?;
    log.send(format!(
        "-----> Commit {short} was built before (build {}); releasing its slug without rebuilding",
        built.id
    ));
    let built_release = platform.store().release(app, version)?;
    let argv = built_release.all_argv();
    let process_types = built_release.process_types;
    let release = platform
        .release(
            app,
            log,
            |mut draft| {
                draft.slug = Some(slug.clone());
                draft.process_types = process_types;
                draft.argv = argv;
                draft
            },
            &format!("Deploy {short}"),
        )
        .await?;
    Ok((release.version, platform.app_url(app)))
}

pub(super) async fn deploy_steps(
    platform: &Platform,
    app: &str,
    upload: std::path::PathBuf,
    commit: Option<String>,
    log: &LogSink,
) -> anyhow::Result<(u32, String)> {
    let _guard = lock_app(platform, app, log).await;
    let store = platform.store();
    let source = super::store::BuildSource {
        commit,
        buildpack: store.app(app)?.buildpack,
    };
    if let Some(built) = store.build_of(app, &source)? {
        return release_built(platform, app, &built, log).await;
    }
    let commit = source.commit.clone();
    let build = store.start_build(app, source)?;
    let build_started = std::time::Instant::now();
    if let Err(err) = log.record_to(&store.build_log_path(&build.id)?) {
        tracing::warn!(app, build = %build.id, "could not write the build log: {err}");
    }
    let source = build_dir(store.home(), &build.id);
    let slug_dir = source.with_extension("slug");
    let result = async {
        // A platform-wide cap on concurrent builds; the rest wait here.
        let slot = platform.builds().slot(log).await;
        let sandbox = platform.builds().sandbox()?;
        // Unpacked as it arrived (upload.rs); moved to the build's place.
        let (from, to) = (upload.clone(), source.clone());
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&to);
            std::fs::create_dir_all(to.parent().expect("build dirs have a parent"))?;
            std::fs::rename(from, to)
        })
        .await?
        .context("could not move the upload into place")?;
        let request = wpaas_builder::buildpack::BuildRequest {
            source_dir: source.clone(),
            slug_dir: slug_dir.clone(),
            cache_dir: platform.build_cache_dir(app)?,
            toolchains_dir: platform.toolchains_dir(),
            env: store.config(app)?.into_iter().collect(),
            buildpack: store.app(app)?.buildpack.map(Into::into),
            timeout: std::time::Duration::from_secs(15 * 60),
            sandbox,
        };
        let build_log = log.clone();
        let output = tokio::task::spawn_blocking(move || {
            wpaas_builder::buildpack::build(&request, &mut |line| {
                build_log.send(line);
            })
        })
        .await??;
        drop(slot);
        // Packed into a file and moved into the store, on a blocking
        // thread; pinned until it is released. The store names slugs by
        // the digest of the stored file.
        let (digest, packed, _pin) = pack_slug(platform, &slug_dir).await?;
        // The digest the release records (`releases:info`), shortened.
        log.send(format!(
            "-----> Compressing... done, {} KiB, slug {}",
            packed / 1024,
            &digest[..12]
        ));
        let process_types: Vec<(String, String)> = output
            .procfile
            .types
            .iter()
            .map(|t| (t.name.clone(), t.command.clone()))
            .collect();
        let argv = output
            .procfile
            .types
            .iter()
            .map(|t| (t.name.clone(), t.argv()))
            .collect();
        // A pushed commit names the release; an upload, its slug.
        let description = format!("Deploy {}", &commit.as_deref().unwrap_or(&digest)[..7]);
        let release = platform
            .release(
                app,
                log,
                |mut draft| {
                    draft.slug = Some(digest.clone());
                    draft.process_types = process_types;
                    draft.argv = argv;
                    draft
                },
                &description,
            )
            .await?;
        anyhow::Ok((release.version, digest))
    }
    .await;
    remove_dirs(vec![source, slug_dir]).await;
    let outcome = match &result {
        Ok((version, digest)) => Ok(super::store::BuildOutput {
            slug: Some(digest.clone()),
            release: Some(*version),
        }),
        Err(err) => Err(format!("{err:#}")),
    };
    let _ = store.finish_build(app, &build.id, outcome);
    platform
        .metrics()
        .build_finished(app, build_started.elapsed(), result.is_ok());
    let (version, _) = result?;
    Ok((version, platform.app_url(app)))
}

/// What a deploy ends with: `-----> Released vN: URL`; for an app
/// without `web`, whose URL answers 503, that it serves nothing there and,
/// when none of its workers runs, how to start them (other types run no
/// replicas until scaled).
pub(super) fn released_lines(platform: &Platform, app: &str, version: u32) -> Vec<String> {
    let url = platform.app_url(app);
    let store = platform.store();
    let (Ok(release), Ok(record)) = (store.release(app, version), store.app(app)) else {
        return vec![format!("-----> Released v{version}: {url}")];
    };
    if release.command("web").is_some() {
        return vec![format!("-----> Released v{version}: {url}")];
    }
    let mut lines = vec![format!(
        "-----> Released v{version} (no web process: nothing answers at {url})"
    )];
    let workers: Vec<&str> = release
        .process_types
        .iter()
        .map(|(kind, _)| kind.as_str())
        .filter(|kind| super::platform::is_long_running(kind))
        .collect();
    let running = workers
        .iter()
        .any(|kind| super::platform::replicas(&record, kind) > 0);
    if !workers.is_empty() && !running {
        let scale: Vec<String> = workers.iter().map(|kind| format!("{kind}=1")).collect();
        lines.push(format!(
            "-----> No process runs yet; start one with: wpaas ps:scale {} -a {app}",
            scale.join(" ")
        ));
    }
    lines
}

/// Packs the build's output into the store (see [`deploy_steps`]):
/// digest, size of the tar.gz, pin.
async fn pack_slug(
    platform: &Platform,
    slug_dir: &std::path::Path,
) -> anyhow::Result<(String, u64, super::platform::SlugPin)> {
    let packed = slug_dir.with_extension("tar.gz");
    let max = platform.max_slug();
    let dir = slug_dir.to_path_buf();
    let file = packed.clone();
    let size =
        tokio::task::spawn_blocking(move || wpaas_builder::slug::pack_slug_file(&dir, &file, max))
            .await??;
    let (digest, pin) = super::store::off_worker(|| platform.adopt_slug(&packed))?;
    Ok((digest, size, pin))
}

/// Removes build directories on a blocking thread.
async fn remove_dirs(dirs: Vec<std::path::PathBuf>) {
    let _ = tokio::task::spawn_blocking(move || {
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    })
    .await;
}
