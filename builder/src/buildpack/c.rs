//! The `c` buildpack: C compiled to a WAGI program (a wasm32-wasi
//! preview-1 command speaking CGI) with the server's clang, lld and
//! wasi-libc — Debian's packages, no toolchain of the app's own.
//!
//! A root `Makefile` runs as `make` with the toolchain exported (`CC`,
//! `CFLAGS`, `LDFLAGS`, …, see [`TOOLCHAIN_ENV`]); without one, every
//! root `*.c` is compiled into `app.wasm`. Either runs in the build
//! sandbox, in the slug (`/build`), without network: C has no package
//! manager to fetch from, and headers and libraries come from the server.

use std::fs;
use std::path::{Path, PathBuf};

use super::{BuildError, Compiled, Ctx};
use crate::procfile::files_with_ext;

/// The target clang compiles for: WASI preview 1, which WAGI runs.
const TARGET: &str = "wasm32-wasi";

/// What a `Makefile` sees in its environment. `CC` carries the target so a
/// Makefile that sets its own `CFLAGS` still cross-compiles; `WASI_SYSROOT`
/// is for Makefiles written for wasi-sdk (`--sysroot=$(WASI_SYSROOT)`):
/// Debian's wasi-libc lives in `/usr/{include,lib}/wasm32-wasi`, where
/// clang finds it with or without it.
const TOOLCHAIN_ENV: &[(&str, &str)] = &[
    ("CC", "clang --target=wasm32-wasi"),
    ("CFLAGS", DEFAULT_CFLAGS),
    ("LDFLAGS", DEFAULT_LDFLAGS),
    ("AR", "llvm-ar"),
    ("RANLIB", "llvm-ranlib"),
    ("NM", "llvm-nm"),
    ("LD", "wasm-ld"),
    ("WASI_SYSROOT", "/usr"),
    ("WASI_TARGET", TARGET),
];

/// Optimised, with warnings shown.
const DEFAULT_CFLAGS: &str = "-O2 -Wall";
/// wasi-libc's archives carry DWARF; dropping it takes a hello world from
/// 170 KB to 37 KB (function names stay, for traps' backtraces).
const DEFAULT_LDFLAGS: &str = "-Wl,--strip-debug";

/// What the toolchain must provide on the server (all under `/usr`, the
/// only part of the host the sandbox shows), and the Debian package of
/// each, for the hint.
const REQUIRED: &[(&str, &str)] = &[
    ("/usr/bin/clang", "clang"),
    ("/usr/bin/wasm-ld", "lld"),
    ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
];

/// The apt-get line that installs everything the buildpack uses.
const INSTALL_HINT: &str =
    "apt-get install clang lld llvm wasi-libc libclang-rt-14-dev-wasm32 make";

/// Why a C build failed.
#[derive(Debug, thiserror::Error)]
pub enum CBuildError {
    /// The compiler or `make` exited non-zero (its output was shown).
    #[error("the C build failed: `{command}` exited {status}; see the compiler's output above")]
    Failed {
        /// What ran, e.g. `make` or `clang … -o app.wasm hello.c`.
        command: String,
        /// Its exit status.
        status: String,
    },
    /// The server lacks part of the toolchain.
    #[error("the C buildpack needs {what} on the server ({path} is missing); install it there: {INSTALL_HINT}")]
    Toolchain {
        /// The missing file.
        path: String,
        /// The Debian package that provides it.
        what: String,
    },
    /// The build ran but left no `.wasm` to serve.
    #[error("the Makefile built no .wasm file at the top of the app; make its default target write one (e.g. app.wasm)")]
    NoModule,
}

/// Whether the source is a C app: a `Makefile` or a `.c` file at its top.
pub(super) fn detect(slug: &Path) -> bool {
    makefile(slug).is_some() || !root_c_files(slug).is_empty()
}

/// The root Makefile, under any name GNU make looks for.
fn makefile(slug: &Path) -> Option<&'static str> {
    ["GNUmakefile", "makefile", "Makefile"]
        .into_iter()
        .find(|name| slug.join(name).is_file())
}

/// The `.c` files at the top of `slug`, sorted (subdirectories are the
/// Makefile's business).
fn root_c_files(slug: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(slug) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.ends_with(".c") && name.len() > 2)
        .collect();
    files.sort();
    files
}

pub(super) fn build(ctx: &mut Ctx<'_>) -> Result<Compiled, BuildError> {
    ctx.step("C app detected");
    let slug = ctx.req.slug_dir.clone();
    let makefile = makefile(&slug);
    check_toolchain(makefile.is_some())?;

    let mut step = ctx.req.sandbox.step("");
    let build_dir = step.bind(&slug, "/build", true);
    step.cwd(build_dir);
    let shown = match makefile {
        Some(name) => {
            step.program("make");
            for (key, value) in TOOLCHAIN_ENV {
                step.env(key, *value);
            }
            ctx.detail(&format!(
                "Running make ({name}) with CC=\"{}\"",
                TOOLCHAIN_ENV[0].1
            ));
            "make".to_string()
        }
        None => {
            let sources = root_c_files(&slug);
            let mut argv = vec![format!("--target={TARGET}")];
            argv.extend(DEFAULT_CFLAGS.split(' ').map(str::to_string));
            argv.push(DEFAULT_LDFLAGS.to_string());
            argv.extend(["-o".to_string(), "app.wasm".to_string()]);
            argv.extend(sources);
            step.program("clang");
            for arg in &argv {
                step.arg(arg);
            }
            let command = format!("clang {}", argv.join(" "));
            ctx.detail(&format!("Compiling: {command}"));
            command
        }
    };
    let status = ctx.run_step(step, &shown, &mut |_| {})?;
    if !status.success() {
        return Err(CBuildError::Failed {
            command: shown,
            status: status
                .code()
                .map_or_else(|| "on a signal".to_string(), |c| c.to_string()),
        }
        .into());
    }

    let modules: Vec<PathBuf> = files_with_ext(&slug, "wasm")
        .into_iter()
        .filter(|m| m.components().count() == 1)
        .collect();
    if modules.is_empty() {
        return Err(CBuildError::NoModule.into());
    }
    for m in &modules {
        let size = fs::symlink_metadata(slug.join(m))
            .map(|m| m.len())
            .unwrap_or(0);
        ctx.detail(&format!("Built {} ({size} bytes, {TARGET})", m.display()));
    }
    let (defaults, hint) = match modules.as_slice() {
        [only] => (
            vec![("web".to_string(), only.to_string_lossy().into_owned())],
            String::new(),
        ),
        many => (
            Vec::new(),
            format!(" ({} .wasm files: which one is web?)", many.len()),
        ),
    };
    Ok(Compiled {
        name: "c".into(),
        defaults,
        no_defaults_hint: hint,
    })
}

/// Fails with an install hint when the server lacks the toolchain: a
/// missing compiler inside the sandbox would only say `execvp: No such file`.
fn check_toolchain(with_make: bool) -> Result<(), CBuildError> {
    let make = [("/usr/bin/make", "make")];
    let needed = REQUIRED
        .iter()
        .chain(if with_make { &make[..] } else { &[] });
    for (path, package) in needed {
        if !Path::new(path).exists() {
            return Err(CBuildError::Toolchain {
                path: path.to_string(),
                what: package.to_string(),
            });
        }
    }
    Ok(())
}
