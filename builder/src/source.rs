//! An app's source together with its local path dependencies.
//!
//! A crate that depends on `wpaas-sdk = { path = "../../sdk" }` (or any
//! other path outside its directory) cannot be built from an upload of its
//! directory alone. [`Upload::plan`] reads the app's `Cargo.toml` and,
//! recursively, those of its path dependencies (`[dependencies]`, dev and
//! build dependencies, `[target.*]` ones, `[patch]` and `[replace]`, and
//! `workspace = true` ones through `[workspace.dependencies]`), and notes the
//! directories that lie outside the app, plus the workspace `Cargo.toml` any
//! of them inherits from (`edition.workspace = true` and the like: cargo
//! needs it to read the dependency).
//!
//! With nothing outside, the upload is the app directory as
//! [`archive::pack`] packs it. Otherwise it is rooted at the closest common
//! ancestor and holds, at their paths below it, the app directory and each
//! dependency directory (each packed like `pack` does), those workspace
//! manifests, and a marker file [`APP_DIR_MARKER`] holding the app's path
//! below the root (e.g. `examples/hello`).
//!
//! On the server, [`locate_app`] reads the marker of an unpacked upload and
//! names the directory to build; the rest of the tree stays in place around
//! it, so relative paths resolve as they do on the developer's machine.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use toml::{Table, Value};

use crate::archive::{self, ArchiveError};

/// The marker, relative to the upload's root, naming the app's directory.
const APP_DIR_MARKER: &str = ".wpaas/app-dir";

/// Why an app's source could not be planned or packed. A variant with a
/// source leaves it out of its own message; show the cause chain.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A directory or manifest could not be read.
    #[error("could not read {path}")]
    Read {
        /// The directory or manifest, as the user named it or the
        /// manifest led to it.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A `Cargo.toml` is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Parse {
        /// The manifest.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A path dependency names a directory that does not exist.
    #[error("path dependency `{name}` of {manifest} is {path}, which does not exist")]
    MissingDependency {
        /// The dependency's key in the manifest.
        name: String,
        /// The manifest declaring it.
        manifest: PathBuf,
        /// Where it points.
        path: PathBuf,
    },
    /// The app's path below the upload's root is not UTF-8, so the marker
    /// cannot hold it.
    #[error("the path {0} is not valid UTF-8")]
    NotUtf8(PathBuf),
    /// Packing failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// What `wpaas deploy` uploads for an app directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The app directory (canonical).
    app: PathBuf,
    /// Path-dependency directories outside `app` (canonical, sorted).
    dependencies: Vec<PathBuf>,
    /// Workspace manifests outside `app` that some crate inherits from
    /// (canonical, sorted).
    manifests: Vec<PathBuf>,
}

impl Upload {
    /// Finds what an upload of `app_dir` must hold. A directory without a
    /// `Cargo.toml` is uploaded alone.
    pub fn plan(app_dir: &Path) -> Result<Self, SourceError> {
        let app = canonical(app_dir)?;
        let mut dependencies = BTreeSet::new();
        let mut manifests = BTreeSet::new();
        if app.join("Cargo.toml").is_file() {
            // Each crate directory is read once, which also ends cycles.
            let mut seen = BTreeSet::from([app.clone()]);
            let mut queue = vec![app.clone()];
            while let Some(dir) = queue.pop() {
                let path = dir.join("Cargo.toml");
                let manifest = read_manifest(&path)?;
                let workspace = if inherits(&manifest) {
                    workspace_of(&dir, &manifest)?
                } else {
                    None
                };
                if let Some(ws) = &workspace {
                    if !ws.path.starts_with(&app) {
                        manifests.insert(ws.path.clone());
                    }
                }
                for (name, dep_path) in path_dependencies(&dir, &manifest, workspace.as_ref()) {
                    let dep = fs::canonicalize(&dep_path).map_err(|_| {
                        SourceError::MissingDependency {
                            name,
                            manifest: path.clone(),
                            path: dep_path,
                        }
                    })?;
                    if seen.insert(dep.clone()) {
                        if !dep.starts_with(&app) {
                            dependencies.insert(dep.clone());
                        }
                        queue.push(dep);
                    }
                }
            }
        }
        Ok(Self {
            app,
            dependencies: dependencies.into_iter().collect(),
            manifests: manifests.into_iter().collect(),
        })
    }

    /// The path dependencies outside the app, relative to it (`../../sdk`).
    pub fn dependencies(&self) -> Vec<PathBuf> {
        self.dependencies
            .iter()
            .map(|d| relative(&self.app, d))
            .collect()
    }

    /// The workspace manifests outside the app that are included, relative
    /// to it (`../../Cargo.toml`).
    pub fn workspace_manifests(&self) -> Vec<PathBuf> {
        self.manifests
            .iter()
            .map(|m| relative(&self.app, m))
            .collect()
    }

    /// The upload as a deterministic tar.gz.
    pub fn pack(&self) -> Result<Vec<u8>, SourceError> {
        if self.dependencies.is_empty() && self.manifests.is_empty() {
            return Ok(archive::pack(&self.app)?);
        }
        let mut root = self.app.clone();
        for path in &self.dependencies {
            root = common_ancestor(&root, path);
        }
        for path in &self.manifests {
            root = common_ancestor(&root, path.parent().unwrap_or(path));
        }
        let below_root = |p: &Path| p.strip_prefix(&root).unwrap_or(p).to_path_buf();
        // A directory inside another one that is packed comes with it.
        let mut dirs: Vec<&PathBuf> = Vec::new();
        let mut all: Vec<&PathBuf> = self.dependencies.iter().chain([&self.app]).collect();
        all.sort();
        for dir in all {
            if !dirs.iter().any(|d| dir.starts_with(d)) {
                dirs.push(dir);
            }
        }
        let files: Vec<PathBuf> = self
            .manifests
            .iter()
            .filter(|m| !dirs.iter().any(|d| m.starts_with(d)))
            .map(|m| below_root(m))
            .collect();
        let dirs: Vec<PathBuf> = dirs.into_iter().map(|d| below_root(d)).collect();
        let app = below_root(&self.app);
        let parts: Option<Vec<&str>> = app.iter().map(|c| c.to_str()).collect();
        let marker = parts
            .ok_or_else(|| SourceError::NotUtf8(app.clone()))?
            .join("/");
        let generated = [(
            PathBuf::from(APP_DIR_MARKER),
            format!("{marker}\n").into_bytes(),
        )];
        Ok(archive::pack_tree(&root, &dirs, &files, &generated)?)
    }
}

fn canonical(path: &Path) -> Result<PathBuf, SourceError> {
    fs::canonicalize(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_manifest(path: &Path) -> Result<Table, SourceError> {
    let text = fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<Table>().map_err(|e| SourceError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

/// Whether the manifest inherits anything from a workspace: some table has
/// `workspace = true` (a package field, a dependency, `[lints]`).
fn inherits(table: &Table) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::Table(t) => inherits(t),
            Value::Array(a) => a.iter().any(value),
            _ => false,
        }
    }
    table.get("workspace").and_then(Value::as_bool) == Some(true) || table.values().any(value)
}

/// The workspace root a crate belongs to.
struct Workspace {
    /// Its `Cargo.toml`.
    path: PathBuf,
    manifest: Table,
}

/// Finds the workspace of the crate in `dir` as cargo does: the crate
/// itself when it has `[workspace]`, the one `package.workspace` names,
/// else the nearest ancestor with a `[workspace]` that does not exclude it.
fn workspace_of(dir: &Path, manifest: &Table) -> Result<Option<Workspace>, SourceError> {
    let path = dir.join("Cargo.toml");
    if manifest.contains_key("workspace") {
        return Ok(Some(Workspace {
            path,
            manifest: manifest.clone(),
        }));
    }
    let named = manifest
        .get("package")
        .and_then(|p| p.get("workspace"))
        .and_then(Value::as_str);
    if let Some(root) = named {
        let path = dir.join(root).join("Cargo.toml");
        let manifest = read_manifest(&path)?;
        let path = canonical(&path)?;
        return Ok(Some(Workspace { path, manifest }));
    }
    for ancestor in dir.ancestors().skip(1) {
        let path = ancestor.join("Cargo.toml");
        if !path.is_file() {
            continue;
        }
        let manifest = read_manifest(&path)?;
        if let Some(Value::Table(ws)) = manifest.get("workspace") {
            if !excluded(ancestor, ws, dir) {
                return Ok(Some(Workspace { path, manifest }));
            }
        }
    }
    Ok(None)
}

/// Cargo's rule: listed in `exclude` and not in `members`.
fn excluded(root: &Path, workspace: &Table, member: &Path) -> bool {
    let listed = |key: &str| {
        workspace
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|p| member.starts_with(root.join(p)))
    };
    listed("exclude") && !listed("members")
}

/// `(name, directory)` of each path dependency the manifest in `dir`
/// declares; `workspace = true` ones are looked up in the workspace's
/// `[workspace.dependencies]`, relative to the workspace root.
fn path_dependencies(
    dir: &Path,
    manifest: &Table,
    workspace: Option<&Workspace>,
) -> Vec<(String, PathBuf)> {
    let inherited = workspace.and_then(|ws| {
        let deps = ws
            .manifest
            .get("workspace")?
            .get("dependencies")?
            .as_table()?;
        Some((ws.path.parent()?, deps))
    });
    let mut found = Vec::new();
    for table in dependency_tables(manifest) {
        for (name, spec) in table {
            if let Some(path) = spec.get("path").and_then(Value::as_str) {
                found.push((name.clone(), dir.join(path)));
            } else if spec.get("workspace").and_then(Value::as_bool) == Some(true) {
                let path = inherited.and_then(|(root, deps)| {
                    let path = deps.get(name)?.get("path")?.as_str()?;
                    Some(root.join(path))
                });
                found.extend(path.map(|p| (name.clone(), p)));
            }
        }
    }
    found
}

/// Every table of dependency specs in a manifest.
fn dependency_tables(manifest: &Table) -> Vec<&Table> {
    const KINDS: [&str; 5] = [
        "dependencies",
        "dev-dependencies",
        "dev_dependencies",
        "build-dependencies",
        "build_dependencies",
    ];
    fn kinds<'a>(table: &'a Table, out: &mut Vec<&'a Table>) {
        out.extend(KINDS.iter().filter_map(|k| table.get(*k)?.as_table()));
    }
    let mut tables = Vec::new();
    kinds(manifest, &mut tables);
    let sub_tables = |key: &str| {
        manifest
            .get(key)
            .and_then(Value::as_table)
            .into_iter()
            .flat_map(|t| t.values().filter_map(Value::as_table))
    };
    for target in sub_tables("target") {
        kinds(target, &mut tables);
    }
    tables.extend(sub_tables("patch"));
    tables.extend(manifest.get("replace").and_then(Value::as_table));
    tables
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// `to` relative to the directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let common = common_ancestor(from, to);
    let ups = from.components().count() - common.components().count();
    let mut rel: PathBuf = std::iter::repeat_n(Component::ParentDir, ups).collect();
    rel.extend(to.components().skip(common.components().count()));
    rel
}

/// The app's directory in an unpacked upload, as its marker names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppDir {
    /// The directory to build.
    pub(crate) path: PathBuf,
    /// Its path below the upload's root, as the marker gives it.
    pub(crate) name: String,
}

/// The marker of an unpacked upload does not name a directory inside it.
#[derive(Debug, thiserror::Error)]
#[error("the upload's {APP_DIR_MARKER} marker is invalid: {0}")]
pub struct BadMarker(String);

/// Reads the [`APP_DIR_MARKER`] of the unpacked upload `source`: `None`
/// when there is none (the upload is the app), else the app's directory,
/// checked to be a relative path without `..` that is a directory inside
/// `source` (symlinks resolved).
pub(crate) fn locate_app(source: &Path) -> Result<Option<AppDir>, BadMarker> {
    let marker = source.join(APP_DIR_MARKER);
    match fs::symlink_metadata(&marker) {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(BadMarker(format!("it cannot be read ({e})"))),
    }
    let text = fs::read_to_string(&marker)
        .map_err(|e| BadMarker(format!("it cannot be read as text ({e})")))?;
    let name = text.trim();
    if name.is_empty() {
        return Err(BadMarker("it is empty".into()));
    }
    for c in Path::new(name).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(BadMarker(format!("{name:?} contains `..`")));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(BadMarker(format!("{name:?} is an absolute path")));
            }
        }
    }
    let root = fs::canonicalize(source)
        .map_err(|e| BadMarker(format!("the upload cannot be read ({e})")))?;
    let path = fs::canonicalize(source.join(name))
        .map_err(|_| BadMarker(format!("{name:?} does not exist in the upload")))?;
    if !path.starts_with(&root) {
        return Err(BadMarker(format!("{name:?} leads outside the upload")));
    }
    if !path.is_dir() {
        return Err(BadMarker(format!("{name:?} is not a directory")));
    }
    Ok(Some(AppDir {
        path,
        name: name.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn krate(dir: &Path, deps: &str) {
        write(
            &dir.join("Cargo.toml"),
            &format!("[package]\nname = \"x\"\nversion = \"0.1.0\"\n\n{deps}"),
        );
        write(&dir.join("src/lib.rs"), "");
    }

    /// Every path in the tarball, sorted, with the marker's contents.
    fn entries(tarball: &[u8]) -> (Vec<String>, Option<String>) {
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("u");
        archive::unpack(tarball, &dest, 1 << 20).unwrap();
        let mut paths: Vec<String> = archive::all_paths(&dest)
            .unwrap()
            .into_iter()
            .filter(|p| dest.join(p).is_file())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        paths.sort();
        let marker = fs::read_to_string(dest.join(APP_DIR_MARKER)).ok();
        (paths, marker)
    }

    #[test]
    fn an_app_without_outside_dependencies_is_uploaded_alone() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("app");
        krate(
            &app,
            "[dependencies]\ninner = { path = \"crates/inner\" }\nserde = \"1\"\n",
        );
        krate(&app.join("crates/inner"), "");
        let upload = Upload::plan(&app).unwrap();
        assert!(upload.dependencies().is_empty());
        assert_eq!(upload.pack().unwrap(), archive::pack(&app).unwrap());

        // No Cargo.toml at all: the directory as it is.
        let plain = t.path().join("plain");
        write(&plain.join("app.wat"), "(module)");
        assert_eq!(
            Upload::plan(&plain).unwrap().pack().unwrap(),
            archive::pack(&plain).unwrap()
        );
    }

    #[test]
    fn outside_dependencies_are_found_recursively_in_every_table() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let app = root.join("apps/web");
        krate(
            &app,
            "[dependencies]\n\
             a = { path = \"../../libs/a\" }\n\
             inner = { path = \"inner\" }\n\
             [dev-dependencies]\nd = { path = \"../../libs/d\" }\n\
             [build-dependencies]\nb = { path = \"../../libs/b\" }\n\
             [target.'cfg(unix)'.dependencies]\nu = { path = \"../../libs/u\" }\n\
             [patch.crates-io]\np = { path = \"../../libs/p\" }\n",
        );
        // Inside the app, but itself depending on something outside.
        krate(
            &app.join("inner"),
            "[dependencies]\ni = { path = \"../../../libs/i\" }\n",
        );
        // a -> c, and c -> a: a cycle.
        krate(
            &root.join("libs/a"),
            "[dependencies]\nc = { path = \"../c\" }\n",
        );
        krate(
            &root.join("libs/c"),
            "[dependencies]\na = { path = \"../a\" }\n",
        );
        for name in ["b", "d", "i", "u", "p"] {
            krate(&root.join("libs").join(name), "");
        }
        write(&root.join("libs/a/.gitignore"), "*.log\n");
        write(&root.join("libs/a/debug.log"), "x");
        write(&root.join("libs/a/target/old"), "x");
        write(&root.join("libs/unrelated/Cargo.toml"), "");
        write(&root.join("top-secret.txt"), "x");

        let upload = Upload::plan(&app).unwrap();
        let deps: Vec<String> = upload
            .dependencies()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let expected: Vec<String> = ["a", "b", "c", "d", "i", "p", "u"]
            .iter()
            .map(|n| format!("../../libs/{n}"))
            .collect();
        assert_eq!(deps, expected);
        assert!(upload.workspace_manifests().is_empty());

        let packed = upload.pack().unwrap();
        assert_eq!(upload.pack().unwrap(), packed, "deterministic");
        let (paths, marker) = entries(&packed);
        assert_eq!(marker.as_deref(), Some("apps/web\n"));
        assert!(
            paths.contains(&"apps/web/Cargo.toml".to_string()),
            "{paths:?}"
        );
        assert!(paths.contains(&"apps/web/inner/src/lib.rs".to_string()));
        assert!(paths.contains(&"libs/a/.gitignore".to_string()));
        assert!(paths.contains(&"libs/c/Cargo.toml".to_string()));
        assert!(paths.contains(&"libs/u/src/lib.rs".to_string()));
        for absent in [
            "libs/a/debug.log",
            "libs/a/target/old",
            "libs/unrelated/Cargo.toml",
            "top-secret.txt",
        ] {
            assert!(!paths.contains(&absent.to_string()), "{absent}: {paths:?}");
        }
    }

    #[test]
    fn workspace_manifests_and_workspace_dependencies_come_along() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(
            &root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"sdk\", \"util\"]\nexclude = [\"examples\"]\n\
             [workspace.package]\nedition = \"2021\"\n\
             [workspace.dependencies]\nutil = { path = \"util\" }\nserde = \"1\"\n",
        );
        write(&root.join("README.md"), "not uploaded");
        krate(
            &root.join("sdk"),
            "[dependencies]\nutil.workspace = true\nserde.workspace = true\n",
        );
        krate(&root.join("util"), "");
        let app = root.join("examples/hello");
        krate(
            &app,
            "[dependencies]\nsdk = { path = \"../../sdk\" }\n[workspace]\n",
        );

        let upload = Upload::plan(&app).unwrap();
        assert_eq!(
            upload.dependencies(),
            [PathBuf::from("../../sdk"), PathBuf::from("../../util")]
        );
        assert_eq!(
            upload.workspace_manifests(),
            [PathBuf::from("../../Cargo.toml")]
        );
        let (paths, marker) = entries(&upload.pack().unwrap());
        assert_eq!(marker.as_deref(), Some("examples/hello\n"));
        assert_eq!(
            paths,
            [
                ".wpaas/app-dir",
                "Cargo.toml",
                "examples/hello/Cargo.toml",
                "examples/hello/src/lib.rs",
                "sdk/Cargo.toml",
                "sdk/src/lib.rs",
                "util/Cargo.toml",
                "util/src/lib.rs",
            ]
        );
    }

    #[test]
    fn a_dependency_containing_the_app_is_packed_once() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("repo");
        krate(&root, "");
        let app = root.join("app");
        krate(&app, "[dependencies]\nparent = { path = \"..\" }\n");
        let upload = Upload::plan(&app).unwrap();
        assert_eq!(upload.dependencies(), [PathBuf::from("..")]);
        let (paths, marker) = entries(&upload.pack().unwrap());
        assert_eq!(marker.as_deref(), Some("app\n"));
        assert_eq!(
            paths,
            [
                ".wpaas/app-dir",
                "Cargo.toml",
                "app/Cargo.toml",
                "app/src/lib.rs",
                "src/lib.rs"
            ]
        );
    }

    #[test]
    fn the_hello_example_is_uploaded_alone() {
        // Its SDK is a dependency by version, supplied by the builder.
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let hello = repo.join("examples/hello");
        let upload = Upload::plan(&hello).unwrap();
        assert!(upload.dependencies().is_empty());
        assert!(upload.workspace_manifests().is_empty());
        let (paths, marker) = entries(&upload.pack().unwrap());
        assert_eq!(marker, None);
        assert!(paths.contains(&"Cargo.lock".to_string()), "{paths:?}");
        assert!(!paths.iter().any(|p| p.contains("target/")), "{paths:?}");
    }

    #[test]
    fn missing_and_malformed_manifests_are_reported() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("app");
        krate(&app, "[dependencies]\ngone = { path = \"../gone\" }\n");
        let err = Upload::plan(&app).unwrap_err();
        assert!(
            matches!(&err, SourceError::MissingDependency { name, .. } if name == "gone"),
            "{err}"
        );
        write(&app.join("Cargo.toml"), "[package\n");
        let err = Upload::plan(&app).unwrap_err();
        assert!(matches!(err, SourceError::Parse { .. }), "{err}");
    }

    fn marker(text: &str) -> (tempfile::TempDir, Result<Option<AppDir>, BadMarker>) {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("examples/hello")).unwrap();
        write(&t.path().join("file"), "x");
        write(&t.path().join(APP_DIR_MARKER), text);
        let found = locate_app(t.path());
        (t, found)
    }

    #[test]
    fn a_good_marker_names_the_app_dir() {
        let (t, found) = marker("examples/hello\n");
        let app = found.unwrap().unwrap();
        assert_eq!(app.name, "examples/hello");
        assert_eq!(
            app.path,
            fs::canonicalize(t.path().join("examples/hello")).unwrap()
        );
        let none = tempfile::tempdir().unwrap();
        assert!(locate_app(none.path()).unwrap().is_none());
    }

    #[test]
    fn bad_markers_are_refused() {
        for (text, why) in [
            ("", "it is empty"),
            ("/etc", "\"/etc\" is an absolute path"),
            ("../outside", "\"../outside\" contains `..`"),
            ("examples/../..", "\"examples/../..\" contains `..`"),
            ("nowhere", "\"nowhere\" does not exist in the upload"),
            ("file", "\"file\" is not a directory"),
        ] {
            let (_t, found) = marker(text);
            let err = found.unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the upload's .wpaas/app-dir marker is invalid: {why}"),
                "{text:?}"
            );
        }
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            let (t, _) = marker("x");
            std::os::unix::fs::symlink(outside.path(), t.path().join("link")).unwrap();
            write(&t.path().join(APP_DIR_MARKER), "link");
            let err = locate_app(t.path()).unwrap_err();
            assert!(
                err.to_string().ends_with("leads outside the upload"),
                "{err}"
            );
        }
    }
}
