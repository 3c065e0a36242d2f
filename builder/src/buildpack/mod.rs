//! Buildpacks: turn a source directory into a slug.
//!
//! # How an app is built
//!
//! The source is copied into the (empty) slug directory — without `.git/`
//! and `target/` — and one buildpack builds it there. (When the upload has
//! a `.wpaas/app-dir` marker — an app uploaded with path dependencies from
//! outside its directory, see [`crate::source`] — the source is the
//! directory the marker names.) The first buildpack that claims the source
//! wins, in this order:
//!
//! 1. **custom** — when one is chosen for the app (`wpaas buildpacks:set
//!    PATH`), or the source has a `.buildpacks` file whose first line that is
//!    neither blank nor a `#` comment is the path of a buildpack directory
//!    (relative paths are resolved against the source directory; URLs are
//!    not supported).
//! 2. **wasm** — the source holds `.wasm` or `.wat` files (anywhere but under
//!    `target/` or `node_modules/`). They are used as they are; each `NAME.wat` without a
//!    `NAME.wasm` next to it is assembled into one. Default process types: if
//!    there is exactly one `.wasm`, `web: that.wasm`.
//! 3. **rust** — the source has a `Cargo.toml`. `cargo build --release
//!    --target wasm32-wasip2` (or `wasm32-wasip1` for a plain program with no
//!    HTTP guest API, or when `[package.metadata.wpaas] target` says so); the
//!    target is installed with rustup when missing. The crate is compiled
//!    where the source is (so path dependencies resolve); cargo's target directory
//!    is the app's build cache, kept between builds, so a small change
//!    rebuilds in seconds. Every bin/cdylib `.wasm` is copied to the top of
//!    the slug. Default process types: the package's artifact (its only one,
//!    or the one named like the package) → `web: NAME.wasm`.
//! 4. **python** — `app.py`, `requirements.txt` or `pyproject.toml` at the
//!    top of the source (before **c**: a Python project may carry a
//!    Makefile). Built with componentize-py (pinned, installed once per
//!    server into the toolchains directory) against the WIT the server
//!    ships, into `app.wasm`, a wasi:http component: the wpaas Python SDK
//!    serves `app.py`'s `handle(request)` or its WSGI `app` (Flask runs
//!    unchanged). Dependencies of `requirements.txt` (or `pyproject.toml`'s
//!    `[project] dependencies`) are vendored with pip in the sandbox, with
//!    network, pure Python only (a package with native extensions fails
//!    the build, named), cached in the app's build cache by the file's
//!    digest; componentize-py runs without network. Default process types:
//!    `web: app.wasm`.
//! 5. **js** — a `package.json` at the top of the source. The app's npm
//!    dependencies are installed in the sandbox (`npm ci --ignore-scripts`,
//!    cached), esbuild bundles its entry point (`main`, else `index.js` or
//!    `src/index.js`) into one ES module, and componentize-js
//!    (StarlingMonkey; pinned, installed once per server into the toolchains
//!    dir) makes it a wasi:http component: a Workers-style
//!    `addEventListener("fetch", …)` handler runs unchanged. Default process
//!    types: `web: app.wasm`. See [`js`].
//! 6. **c** — a `Makefile` or a `*.c` file at the top of the source. Built
//!    with the server's clang, lld and wasi-libc (Debian's packages) for
//!    `wasm32-wasi` (preview 1): a WAGI program. A Makefile runs as `make`
//!    with `CC="clang --target=wasm32-wasi"`, `CFLAGS`, `LDFLAGS`, `AR`,
//!    `RANLIB`, `NM`, `LD`, `WASI_SYSROOT` and `WASI_TARGET` in its
//!    environment; without one, every top-level `*.c` is compiled into
//!    `app.wasm`. Both run in the slug, sandboxed, without network. Default
//!    process types: the one `.wasm` at the top → `web: app.wasm`.
//!
//! Output is streamed live: `-----> Step` lines, details indented seven
//! spaces. A build has a time limit; when it passes, the running step and
//! every process it started are killed and the build fails.
//!
//! # Custom buildpacks (the Heroku classic contract)
//!
//! A buildpack is a directory with executables:
//!
//! * `bin/detect BUILD_DIR` — exit 0 and print the buildpack's name on
//!   stdout if it can build the app; any other exit status means it does not
//!   apply, and the build fails.
//! * `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` — build the app in place.
//!   `BUILD_DIR` starts as a copy of the source; whatever it holds afterwards
//!   is the slug. `CACHE_DIR` persists between builds of the same app.
//!   `ENV_DIR` holds one file per config var: the file name is the key, the
//!   contents the value. Everything it prints (stdout and stderr) is shown
//!   to the user as it is printed; a non-zero exit fails the build.
//! * `bin/release BUILD_DIR` (optional) — print YAML whose
//!   `default_process_types` map gives process types used when the app has
//!   no Procfile:
//!
//!   ```yaml
//!   ---
//!   default_process_types:
//!     web: app.wasm --port 8080
//!   ```
//!
//! All three run in the build sandbox ([`crate::sandbox`]) with the
//! working directory set to `BUILD_DIR`, stdin closed: `BUILD_DIR` is
//! `/build`, `CACHE_DIR` `/cache`, `ENV_DIR` `/env` (read-only), the
//! buildpack `/buildpack` (read-only); only `bin/compile` has network. A
//! relative `.buildpacks` path must stay inside the upload.
//!
//! # Procfile
//!
//! The app's `Procfile` (at the top of the source) names its process types,
//! one per line, `type: command`; blank lines and lines starting with `#`
//! are ignored. A type is `[a-z0-9_-]+`, at most 63 characters, declared
//! once. The command's first word is a `.wasm` module, a path relative to
//! the slug (no `..`); the rest are its arguments (split on spaces, with
//! shell-style `'…'`, `"…"` and `\` quoting; `$VARS` are expanded from
//! config when the process starts). A Procfile in the source overrides the
//! buildpack's default types. The final Procfile is written into the slug
//! and every module it names must exist there; mistakes are reported with
//! their line number, e.g.
//! `Procfile line 3: invalid process type "Web!" (use a-z, 0-9, _ and -, at most 63 characters)`.

mod c;
pub use c::CBuildError;
mod custom;
pub use custom::check as check_buildpack;
mod js;
pub use js::JsBuildError;
mod python;
pub use python::PythonBuildError;
mod rust;
mod toolchain;
mod wasm;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::archive::ArchiveError;
use crate::procfile::{Procfile, ProcfileError};

/// What to build, where, and under which limits.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The app's source (read only).
    pub source_dir: PathBuf,
    /// Where the slug is built; created if missing, must be empty.
    pub slug_dir: PathBuf,
    /// The app's build cache; persists between builds.
    pub cache_dir: PathBuf,
    /// Where buildpacks install language toolchains (componentize-py,
    /// componentize-js): shared by every app's builds, so a toolchain is
    /// downloaded once per server.
    pub toolchains_dir: PathBuf,
    /// Config vars (given to custom buildpacks as `ENV_DIR`).
    pub env: Vec<(String, String)>,
    /// A custom buildpack directory chosen for the app.
    pub buildpack: Option<PathBuf>,
    /// The time limit for the whole build.
    pub timeout: Duration,
    /// How build steps are isolated ([`crate::sandbox`]).
    pub sandbox: crate::sandbox::Sandbox,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// Which buildpack built it (`wasm`, `rust`, or the custom one's name).
    pub buildpack: String,
    /// The slug's Procfile, validated.
    pub procfile: Procfile,
    /// The digest of the slug's files ([`crate::slug::digest`]); a server
    /// stores the slug by the digest of its packed tar.gz instead.
    pub digest: String,
}

/// Why a build failed. Messages are one line, meant for the user; a
/// variant with a source (an OS error, a Procfile error) leaves it out of
/// its own message, so show the whole cause chain (anyhow's `{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No buildpack claims the source.
    #[error(
        "no buildpack applies to this app: expected .wasm/.wat files, a Cargo.toml, app.py/requirements.txt/pyproject.toml, a package.json, a Makefile or *.c files, or a custom buildpack (set one with buildpacks:set or a .buildpacks file)"
    )]
    NoBuildpack,
    /// A custom buildpack's `bin/detect` rejected the source.
    #[error("buildpack {buildpack} does not apply to this app (bin/detect exited {status})")]
    NotApplicable {
        /// The buildpack's path.
        buildpack: String,
        /// Its exit status.
        status: String,
    },
    /// The custom buildpack is not usable (missing, not executable, a URL).
    #[error("buildpack {buildpack} cannot be used: {reason}")]
    BadBuildpack {
        /// The buildpack as given.
        buildpack: String,
        /// What is wrong.
        reason: String,
    },
    /// A custom buildpack's `bin/compile` (or `bin/release`) failed.
    #[error("buildpack {buildpack} failed: bin/{step} exited {status}; see the output above")]
    StepFailed {
        /// The buildpack's name.
        buildpack: String,
        /// `compile` or `release`.
        step: &'static str,
        /// Its exit status.
        status: String,
    },
    /// The Rust build failed.
    #[error(transparent)]
    Rust(crate::rust::BuildError),
    /// The C build failed.
    #[error(transparent)]
    C(#[from] CBuildError),
    /// The Python build failed.
    #[error(transparent)]
    Python(#[from] PythonBuildError),
    /// The JavaScript build failed.
    #[error(transparent)]
    Js(#[from] JsBuildError),
    /// A `.wat` file does not assemble.
    #[error("{path}: {message}")]
    Wat {
        /// The file, relative to the source.
        path: String,
        /// The assembler's message (with line and column).
        message: String,
    },
    /// The app's Procfile is invalid or names a missing module.
    #[error(transparent)]
    Procfile(#[from] ProcfileError),
    /// The buildpack's default process types are invalid.
    #[error("the default process types of buildpack {buildpack} are invalid")]
    DefaultTypes {
        /// The buildpack's name.
        buildpack: String,
        /// What is wrong with them.
        source: ProcfileError,
    },
    /// No Procfile and no default process types.
    #[error("no Procfile, and buildpack {buildpack} has no default process types{hint}; add a Procfile like `web: app.wasm`")]
    NoProcessTypes {
        /// The buildpack's name.
        buildpack: String,
        /// Why, e.g. " (3 .wasm files: which is web?)".
        hint: String,
    },
    /// The upload's `.wpaas/app-dir` marker does not name a directory in it.
    #[error(transparent)]
    AppDir(#[from] crate::source::BadMarker),
    /// A build step could not be started at all.
    #[error("could not run `{command}`: {reason}")]
    Spawn {
        /// What was started, as shown to the user.
        command: String,
        /// The OS error.
        reason: String,
    },
    /// The time limit passed; the running step was killed.
    #[error("the build timed out after {}s and was stopped", .0.as_secs_f64())]
    TimedOut(Duration),
    /// The slug directory already has files in it.
    #[error("the slug directory {0} is not empty")]
    SlugNotEmpty(PathBuf),
    /// A config var name that cannot be a file name in `ENV_DIR`.
    #[error("config var name {0:?} is not valid")]
    BadEnvKey(String),
    /// Digesting the slug failed.
    #[error(transparent)]
    Slug(#[from] ArchiveError),
    /// A filesystem error on the server's side of the build.
    #[error("{context}")]
    Io {
        /// What was being done (`writing the Procfile`).
        context: String,
        /// The OS error.
        source: io::Error,
    },
}

impl BuildError {
    /// Why running the step shown as `shown` failed: the build's time
    /// limit, or a step that could not be started.
    pub(crate) fn from_run(e: crate::exec::RunError, timeout: Duration, shown: &str) -> Self {
        match e {
            crate::exec::RunError::TimedOut => Self::TimedOut(timeout),
            crate::exec::RunError::Spawn(e) => Self::Spawn {
                command: shown.to_string(),
                reason: e.to_string(),
            },
        }
    }
}

/// Shows a line of a step's output, indented; blank lines (npm and pip
/// print many) are not shown.
pub(crate) fn show(log: &mut dyn FnMut(&str), line: &str) {
    if !line.trim().is_empty() {
        log(&format!("       {line}"));
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let context = context.into();
    move |source| BuildError::Io { context, source }
}

/// What a buildpack hands back: its name and its default process types.
pub(crate) struct Compiled {
    name: String,
    defaults: Vec<(String, String)>,
    /// Said when there are no defaults, e.g. " (2 .wasm files)".
    no_defaults_hint: String,
}

/// Shared state of one build.
pub(crate) struct Ctx<'a> {
    req: &'a BuildRequest,
    /// The whole upload (the app's directory or one above it, with its
    /// path dependencies).
    upload: PathBuf,
    deadline: Instant,
    log: &'a mut dyn FnMut(&str),
}

impl Ctx<'_> {
    fn step(&mut self, text: &str) {
        (self.log)(&format!("-----> {text}"));
    }
    fn detail(&mut self, text: &str) {
        (self.log)(&format!("       {text}"));
    }

    /// Runs a sandboxed step (shown to the user as `shown`), its output
    /// shown indented as it is printed; `on_line` sees every line too.
    fn run_step(
        &mut self,
        step: crate::sandbox::Step,
        shown: &str,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<std::process::ExitStatus, BuildError> {
        let log = &mut *self.log;
        self.req
            .sandbox
            .run(step, self.deadline, &mut |_, line| {
                on_line(line);
                show(log, line);
            })
            .map_err(|e| BuildError::from_run(e, self.req.timeout, shown))
    }
}

/// Builds `req.source_dir` into `req.slug_dir`, streaming output to `log`.
///
/// An upload that carries path dependencies has a `.wpaas/app-dir` marker
/// ([`crate::source`]): the directory it names is built as the app, with
/// the rest of the tree left where it is so relative paths resolve.
pub fn build(req: &BuildRequest, log: &mut dyn FnMut(&str)) -> Result<BuildOutput, BuildError> {
    let deadline = Instant::now() + req.timeout;
    let upload = req.source_dir.clone();
    let app_req;
    let req = match crate::source::locate_app(&req.source_dir)? {
        Some(app) => {
            log(&format!(
                "-----> Building {} (uploaded with its path dependencies)",
                app.name
            ));
            app_req = BuildRequest {
                source_dir: app.path,
                ..req.clone()
            };
            &app_req
        }
        None => req,
    };
    let slug = &req.slug_dir;
    fs::create_dir_all(slug).map_err(io_err(format!("creating {}", slug.display())))?;
    if fs::read_dir(slug)
        .map_err(io_err(format!("reading {}", slug.display())))?
        .next()
        .is_some()
    {
        return Err(BuildError::SlugNotEmpty(slug.clone()));
    }
    fs::create_dir_all(&req.cache_dir)
        .map_err(io_err(format!("creating {}", req.cache_dir.display())))?;
    copy_tree(&req.source_dir, slug, true)?;

    let mut ctx = Ctx {
        req,
        upload,
        deadline,
        log,
    };
    let compiled = if let Some(pack) = custom::chosen(req)? {
        custom::build(&mut ctx, &pack)?
    } else if wasm::detect(slug) {
        wasm::build(&mut ctx)?
    } else if slug.join("Cargo.toml").is_file() {
        rust::build(&mut ctx)?
    } else if python::detect(slug) {
        python::build(&mut ctx)?
    } else if js::detect(slug) {
        js::build(&mut ctx)?
    } else if c::detect(slug) {
        c::build(&mut ctx)?
    } else {
        return Err(BuildError::NoBuildpack);
    };

    ctx.step("Discovering process types");
    let procfile_path = slug.join("Procfile");
    let procfile = if procfile_path.is_file() {
        let text = read_no_follow(&procfile_path).map_err(io_err("reading the Procfile"))?;
        let procfile = Procfile::parse(&text)?;
        ctx.detail(&format!(
            "Procfile declares types -> {}",
            procfile.names().join(", ")
        ));
        procfile
    } else if compiled.defaults.is_empty() {
        return Err(BuildError::NoProcessTypes {
            buildpack: compiled.name,
            hint: compiled.no_defaults_hint,
        });
    } else {
        let pairs = compiled
            .defaults
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let procfile = Procfile::from_pairs(pairs).map_err(|source| BuildError::DefaultTypes {
            buildpack: compiled.name.clone(),
            source,
        })?;
        fs::write(&procfile_path, procfile.to_string()).map_err(io_err("writing the Procfile"))?;
        ctx.detail(&format!(
            "Default types for buildpack -> {}",
            procfile.names().join(", ")
        ));
        procfile
    };
    procfile.validate_modules(slug)?;
    let digest = crate::slug::digest(slug)?;
    // No digest here: a server stores the slug packed, by the digest of
    // the packed file, and says that one once it has it.
    ctx.step("Slug ready");
    Ok(BuildOutput {
        buildpack: compiled.name,
        procfile,
        digest,
    })
}

/// Reads a file the build wrote, refusing a symlink (which could point at
/// a file of the host the build itself could not read); at most 1 MiB.
pub(crate) fn read_no_follow(path: &Path) -> io::Result<String> {
    use std::io::Read;
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)?
    };
    #[cfg(not(unix))]
    let file = fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(1 << 20).read_to_string(&mut text)?;
    Ok(text)
}

/// Copies `from` into `to` (which exists): files with their permissions,
/// symlinks as symlinks; `.git/` anywhere and, with `skip_target`, the
/// top-level `target/` are left out.
pub(crate) fn copy_tree(from: &Path, to: &Path, skip_target: bool) -> Result<(), BuildError> {
    let entries = fs::read_dir(from).map_err(io_err(format!("reading {}", from.display())))?;
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name == ".git" || (skip_target && name == "target") {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let meta =
            fs::symlink_metadata(&src).map_err(io_err(format!("reading {}", src.display())))?;
        if meta.is_dir() {
            fs::create_dir(&dst).map_err(io_err(format!("creating {}", dst.display())))?;
            copy_tree(&src, &dst, false)?;
        } else if meta.file_type().is_symlink() {
            #[cfg(unix)]
            {
                let target =
                    fs::read_link(&src).map_err(io_err(format!("reading {}", src.display())))?;
                std::os::unix::fs::symlink(target, &dst)
                    .map_err(io_err(format!("creating {}", dst.display())))?;
            }
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(io_err(format!("copying {}", src.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
