//! The `js` buildpack: a JavaScript app (a `package.json` at the top of
//! the source) bundled with esbuild and made a wasi:http component with
//! componentize-js (SpiderMonkey in StarlingMonkey).
//!
//! 1. The toolchain — componentize-js and esbuild, pinned by the lockfile
//!    in `builder/js/` that ships inside the binary — is installed once per
//!    server with `npm ci --ignore-scripts` into the toolchains dir
//!    ([`super::toolchain`]). That is the platform's own install, from its
//!    own lockfile; it runs outside the sandbox.
//! 2. The app's dependencies (`dependencies` and `devDependencies`) are
//!    installed in the build sandbox, with network, by `npm ci` (with a
//!    `package-lock.json`) or `npm install`, always `--ignore-scripts`:
//!    no install script of a package runs. `node_modules` lives in the
//!    app's build cache and is reused while `package.json` and the lockfile
//!    stay the same; a `node_modules/` in the source is ignored.
//! 3. esbuild bundles the entry point — `main` of `package.json`, else
//!    `index.js`, `index.mjs`, `index.ts`, or the same under `src/` — into
//!    one ES module (`--platform=browser`, as for Workers), sandboxed,
//!    without network.
//!    The module `"wpaas"` is the platform's SDK (`builder/js/wpaas.js`):
//!    `kv` and `config`, the app's data.
//! 4. componentize-js turns the bundle into `app.wasm` for the world the
//!    server serves (wasi:http/proxy, wasi:keyvalue and wasi:config, see
//!    [`crate::wit`]), sandboxed,
//!    without network. A Workers-style handler,
//!    `addEventListener("fetch", e => e.respondWith(…))`, is the export;
//!    `console.log` goes to the process's log; `process.env` holds the
//!    app's config, read on each access (read it in the handler: the
//!    bundle's top level runs once, at build time, when componentize-js
//!    pre-initialises the component). When the
//!    bundle did not change (only other files did), the last component is
//!    reused.
//!
//! Default process types: `web: app.wasm`.

mod steps;

use std::fs;
use std::path::Path;
use std::time::Instant;

use super::{io_err, BuildError, Compiled, Ctx};

/// The pinned toolchain: what `npm ci` installs.
const TOOLCHAIN_PACKAGE: &str = include_str!("../../../js/package.json");
const TOOLCHAIN_LOCK: &str = include_str!("../../../js/package-lock.json");
/// The toolchain's directory name under the toolchains dir (the pinned
/// versions, so a new pin installs beside the old one).
const TOOLCHAIN: &str = "js-componentize-js-0.23.0-esbuild-0.28.2";
/// Shown to the user.
const TOOLCHAIN_SHOWN: &str = "componentize-js 0.23.0 (StarlingMonkey), esbuild 0.28.2";

/// The apt-get line that installs what the buildpack runs.
const INSTALL_HINT: &str = "apt-get install nodejs npm";

/// Entry points tried, in order, when `package.json` has no `main`.
const ENTRIES: &[&str] = &[
    "index.js",
    "index.mjs",
    "index.ts",
    "src/index.js",
    "src/index.mjs",
    "src/index.ts",
];

/// The component the build writes at the top of the slug.
const OUTPUT: &str = "app.wasm";

/// Why a JavaScript build failed.
#[derive(Debug, thiserror::Error)]
pub enum JsBuildError {
    /// A step (npm, esbuild, componentize-js) exited non-zero; its output
    /// was shown.
    #[error("the JavaScript build failed: `{command}` exited {status}; see its output above")]
    Failed {
        /// What ran, e.g. `esbuild index.js --bundle …`.
        command: String,
        /// Its exit status.
        status: String,
    },
    /// The server lacks Node.js or npm.
    #[error("the JavaScript buildpack needs {what} on the server ({path} is missing); install it there: {INSTALL_HINT}")]
    Toolchain {
        /// The missing file.
        path: String,
        /// What it is.
        what: String,
    },
    /// `package.json` is not valid JSON (or not an object).
    #[error("package.json is not valid: {0}")]
    PackageJson(String),
    /// No entry point.
    #[error("no entry point: package.json has no \"main\" and there is no {}; set \"main\" in package.json", ENTRIES.join(", "))]
    NoEntry,
    /// `main` names a file that is not there (or outside the app).
    #[error("package.json \"main\" is {0:?}, which is not a file of the app")]
    BadMain(String),
    /// componentize-js exited 0 but left no regular file.
    #[error("componentize-js wrote no component")]
    NoComponent,
}

/// Whether the source is a JavaScript app: a `package.json` at its top.
pub(super) fn detect(slug: &Path) -> bool {
    slug.join("package.json").is_file()
}

/// What the build needs from `package.json`.
#[derive(Debug, PartialEq)]
pub(super) struct Package {
    /// `main`, if set.
    pub(super) main: Option<String>,
    /// Whether it declares any dependency to install.
    pub(super) has_dependencies: bool,
}

/// Reads what the build needs from `package.json`.
pub(super) fn parse_package(text: &str) -> Result<Package, JsBuildError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| JsBuildError::PackageJson(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| JsBuildError::PackageJson("it is not a JSON object".into()))?;
    let main = object
        .get("main")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let has_dependencies = ["dependencies", "devDependencies"].iter().any(|key| {
        object
            .get(*key)
            .and_then(|d| d.as_object())
            .is_some_and(|d| !d.is_empty())
    });
    Ok(Package {
        main,
        has_dependencies,
    })
}

/// The entry point, relative to the app: `main`, else the first of
/// [`ENTRIES`] that exists.
pub(super) fn entry_point(slug: &Path, package: &Package) -> Result<String, JsBuildError> {
    if let Some(main) = &package.main {
        let rel = main.trim_start_matches("./");
        let inside = Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let is_file = fs::symlink_metadata(slug.join(rel)).is_ok_and(|m| m.is_file());
        return if inside && !rel.is_empty() && is_file {
            Ok(rel.to_string())
        } else {
            Err(JsBuildError::BadMain(main.clone()))
        };
    }
    ENTRIES
        .iter()
        .find(|e| fs::symlink_metadata(slug.join(e)).is_ok_and(|m| m.is_file()))
        .map(|e| e.to_string())
        .ok_or(JsBuildError::NoEntry)
}

pub(super) fn build(ctx: &mut Ctx<'_>) -> Result<Compiled, BuildError> {
    ctx.step("JavaScript app detected");
    let slug = ctx.req.slug_dir.clone();
    check_node()?;
    let text = super::read_no_follow(&slug.join("package.json"))
        .map_err(io_err("reading package.json"))?;
    let package = parse_package(&text)?;
    let entry = entry_point(&slug, &package)?;

    let toolchain = steps::toolchain(ctx)?;
    // Dependencies are installed for this platform, into the cache.
    let local = slug.join("node_modules");
    if fs::symlink_metadata(&local).is_ok() {
        ctx.detail("Ignoring the app's own node_modules/ (dependencies are installed here)");
        if local.is_dir() && !local.is_symlink() {
            fs::remove_dir_all(&local)
        } else {
            fs::remove_file(&local)
        }
        .map_err(io_err("removing node_modules/"))?;
    }
    if package.has_dependencies {
        steps::install_dependencies(ctx)?;
    } else {
        ctx.detail("No dependencies in package.json");
    }

    let started = Instant::now();
    let bundle = steps::bundle(ctx, &toolchain, &entry, package.has_dependencies)?;
    let bundled = started.elapsed();
    let started = Instant::now();
    let reused = steps::componentize(ctx, &toolchain, &bundle)?;
    let size = fs::metadata(slug.join(OUTPUT))
        .map(|m| m.len())
        .unwrap_or(0);
    ctx.detail(&format!(
        "Built {OUTPUT} ({size} bytes, wasi:http component; bundled in {:.1}s, {} in {:.1}s)",
        bundled.as_secs_f64(),
        if reused {
            "bundle unchanged, component reused"
        } else {
            "componentized"
        },
        started.elapsed().as_secs_f64()
    ));
    Ok(Compiled {
        name: "js".into(),
        defaults: vec![("web".to_string(), OUTPUT.to_string())],
        no_defaults_hint: String::new(),
    })
}

/// Fails with an install hint when the server has no Node.js or npm.
fn check_node() -> Result<(), JsBuildError> {
    for (path, what) in [("/usr/bin/node", "Node.js"), ("/usr/bin/npm", "npm")] {
        if !Path::new(path).exists() {
            return Err(JsBuildError::Toolchain {
                path: path.to_string(),
                what: what.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
