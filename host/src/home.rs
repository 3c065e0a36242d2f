//! `WPAAS_HOME`: every path the server (and `wpaas up`, and the CLI's own
//! files) keeps under it, named once.
//!
//! ```text
//! token                      the API's bearer token (mode 0600)
//! credentials.json           the CLI's saved logins (`wpaas login`)
//! db/                        the store's records (sled)
//! data/kv/                   the apps' key-value data (sled; `wpaas kv:*`, wasi:keyvalue)
//! slugs/<sha256>.tar.gz      content-addressed slugs (shared between apps and releases)
//! slugs/unpacked/<sha256>/   a slug's files, unpacked once for the processes that run it
//! builds/<id>.log            build output
//! releases/<app>/v<N>.log    a release's release-phase output
//! cache/build/<app>/         per-app build cache (cargo target dir, custom buildpack cache)
//! cache/toolchains/          language toolchains buildpacks install (componentize-py, -js), shared by every app
//! cache/compiled/            compiled code (`.cwasm`), MAC'd with cache/compiled.key
//! git/<app>.git/             bare repository per app, pushed to with `git push`
//! logs/                      each app's log file
//! tmp/uploads/<random>/      deploy uploads while they arrive
//! tmp/builds/<id>/           an app's source while it builds
//! ```
//!
//! The layout is on disk in existing homes: renaming a path here moves where
//! a running installation looks for its state, so do not.
//!
//! Methods that take a name (`app`, build `id`, slug `digest`) join it as one
//! path component: callers pass names the store has validated
//! (`validate_app_name`, build ids `b<n>`, sha256 hex digests), never raw user
//! input.

use std::path::{Path, PathBuf};

/// The root of a wpaas installation's files (`WPAAS_HOME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `WPAAS_HOME` itself.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `token`: the API's bearer token.
    pub fn token(&self) -> PathBuf {
        self.root.join("token")
    }

    /// `credentials.json`: the CLI's saved logins.
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials.json")
    }

    /// `db/`: the store's database.
    pub(crate) fn db(&self) -> PathBuf {
        self.root.join("db")
    }

    /// `data/kv/`: the apps' key-value data.
    pub(crate) fn kv(&self) -> PathBuf {
        self.root.join("data/kv")
    }

    /// `data/up/<app>/`: the key-value data `wpaas up` serves an app
    /// (apart from the server's, which keeps its database locked).
    pub fn up_kv(&self, app: &str) -> PathBuf {
        self.root.join("data/up").join(component(app))
    }

    /// `slugs/`: stored slugs.
    pub(crate) fn slugs(&self) -> PathBuf {
        self.root.join("slugs")
    }

    /// `slugs/<digest>.tar.gz`: one stored slug.
    pub(crate) fn slug(&self, digest: &str) -> PathBuf {
        self.slugs().join(format!("{}.tar.gz", component(digest)))
    }

    /// `slugs/unpacked/`: slugs unpacked for running.
    pub(crate) fn unpacked_slugs(&self) -> PathBuf {
        self.slugs().join("unpacked")
    }

    /// `slugs/unpacked/<digest>/`: one slug's files.
    pub(crate) fn unpacked_slug(&self, digest: &str) -> PathBuf {
        self.unpacked_slugs().join(component(digest))
    }

    /// `builds/`: build logs.
    pub(crate) fn build_logs(&self) -> PathBuf {
        self.root.join("builds")
    }

    /// `builds/<id>.log`: one build's output.
    pub(crate) fn build_log(&self, id: &str) -> PathBuf {
        self.build_logs().join(format!("{}.log", component(id)))
    }

    /// `releases/<app>/`: the release-phase output of an app's releases.
    pub(crate) fn release_outputs(&self, app: &str) -> PathBuf {
        self.root.join("releases").join(component(app))
    }

    /// `releases/<app>/v<N>.log`: one release's release-phase output.
    pub(crate) fn release_output(&self, app: &str, version: u32) -> PathBuf {
        self.release_outputs(app).join(format!("v{version}.log"))
    }

    /// `cache/build/`: the per-app build caches.
    pub(crate) fn build_caches(&self) -> PathBuf {
        self.root.join("cache/build")
    }

    /// `cache/build/<app>/`: one app's build cache.
    pub(crate) fn build_cache(&self, app: &str) -> PathBuf {
        self.build_caches().join(component(app))
    }

    /// `cache/toolchains/`: the toolchains buildpacks install for every
    /// app's builds (componentize-py, componentize-js).
    pub(crate) fn toolchains(&self) -> PathBuf {
        self.root.join("cache/toolchains")
    }

    /// `cache/compiled/`: compiled code, shared by the server and `wpaas up`.
    pub fn compiled_cache(&self) -> PathBuf {
        self.root.join("cache/compiled")
    }

    /// `cache/compiled.key`: the MAC key of the compiled-code cache (the
    /// cache itself derives it from its directory: `<dir>.key`).
    pub fn compiled_cache_key(&self) -> PathBuf {
        self.compiled_cache().with_extension("key")
    }

    /// `git/`: the apps' bare repositories.
    pub(crate) fn git_repos(&self) -> PathBuf {
        self.root.join("git")
    }

    /// `git/<app>.git/`: one app's bare repository.
    pub(crate) fn git_dir(&self, app: &str) -> PathBuf {
        self.git_repos().join(format!("{}.git", component(app)))
    }

    /// `logs/`: the apps' log files.
    pub(crate) fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// `tmp/`: scratch space the server empties of what a crash left.
    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// `tmp/uploads/`: deploy uploads while they arrive.
    pub(crate) fn uploads(&self) -> PathBuf {
        self.tmp().join("uploads")
    }

    /// `tmp/builds/<id>/`: where an app's source is unpacked for build `id`.
    pub(crate) fn build_dir(&self, id: &str) -> PathBuf {
        self.tmp().join("builds").join(component(id))
    }
}

impl From<PathBuf> for Home {
    fn from(root: PathBuf) -> Self {
        Self::new(root)
    }
}

impl From<&Path> for Home {
    fn from(root: &Path) -> Self {
        Self::new(root)
    }
}

/// `name` as one path component. Names come validated from the store; a
/// name that is not one component is a bug that must not become a path
/// outside its directory, so it is replaced by one that names nothing.
fn component(name: &str) -> &str {
    let one = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    if one {
        name
    } else {
        "_invalid_"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_one_on_disk() {
        let home = Home::new("/h");
        let p = |p: PathBuf| p.display().to_string();
        assert_eq!(p(home.token()), "/h/token");
        assert_eq!(p(home.db()), "/h/db");
        assert_eq!(p(home.kv()), "/h/data/kv");
        assert_eq!(p(home.slug("ab")), "/h/slugs/ab.tar.gz");
        assert_eq!(p(home.unpacked_slug("ab")), "/h/slugs/unpacked/ab");
        assert_eq!(p(home.build_log("b1")), "/h/builds/b1.log");
        assert_eq!(p(home.release_output("app", 3)), "/h/releases/app/v3.log");
        assert_eq!(p(home.build_cache("app")), "/h/cache/build/app");
        assert_eq!(p(home.toolchains()), "/h/cache/toolchains");
        assert_eq!(p(home.compiled_cache()), "/h/cache/compiled");
        assert_eq!(p(home.compiled_cache_key()), "/h/cache/compiled.key");
        assert_eq!(p(home.git_dir("app")), "/h/git/app.git");
        assert_eq!(p(home.logs()), "/h/logs");
        assert_eq!(p(home.uploads()), "/h/tmp/uploads");
        assert_eq!(p(home.build_dir("b1")), "/h/tmp/builds/b1");
        assert_eq!(p(home.credentials()), "/h/credentials.json");
    }
}
