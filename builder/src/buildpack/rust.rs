//! The `rust` buildpack: `cargo build --release` for WASI, with cargo's
//! target directory in the app's build cache.

use std::fs;
use std::path::Path;

use super::{io_err, BuildError, Compiled, Ctx};
use crate::rust::{self as compile_step, CompileOptions, SandboxedCargo};

pub(super) fn build(ctx: &mut Ctx<'_>) -> Result<Compiled, BuildError> {
    let slug = ctx.req.slug_dir.clone();
    ctx.step("Rust app detected");
    let opts = CompileOptions {
        target_dir: Some(ctx.req.cache_dir.join("target")),
        stream: true,
        deadline: Some(ctx.deadline),
        sandbox: Some(SandboxedCargo {
            sandbox: ctx.req.sandbox.clone(),
            workspace: ctx.upload.clone(),
            cache_dir: ctx.req.cache_dir.clone(),
        }),
    };
    let timeout = ctx.req.timeout;
    let log = &mut *ctx.log;
    // Built where the source is, so path dependencies resolve as the author
    // wrote them; artifacts land in the cache and are copied into the slug.
    let source = ctx.req.source_dir.clone();
    let compiled =
        compile_step::compile(&source, &opts, &mut |line| log(&format!("       {line}"))).map_err(
            |e| match e {
                compile_step::BuildError::TimedOut => BuildError::TimedOut(timeout),
                other => BuildError::Rust(other),
            },
        )?;
    let cache = ctx.req.cache_dir.clone();
    for wasm in &compiled.artifacts {
        // The build could write the cache: copy only a regular file
        // reached through no symlink.
        if !plain_path_under(&cache, wasm) {
            return Err(BuildError::Rust(compile_step::BuildError::NoArtifact(
                format!(
                    "{} is not a regular file of the build cache",
                    wasm.strip_prefix(&cache).unwrap_or(wasm).display()
                ),
            )));
        }
        let name = wasm.file_name().unwrap_or_default();
        fs::copy(wasm, slug.join(name)).map_err(io_err(format!("copying {}", wasm.display())))?;
        let size = fs::metadata(wasm).map(|m| m.len()).unwrap_or(0);
        ctx.detail(&format!(
            "Built {} ({} bytes, {})",
            name.to_string_lossy(),
            size,
            compiled.target.triple()
        ));
    }
    let (defaults, hint) = match (&compiled.primary, &compiled.no_primary) {
        (Some(p), _) => {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            (vec![("web".to_string(), name.into_owned())], String::new())
        }
        (None, Some(why)) => (Vec::new(), format!(" ({why})")),
        (None, None) => (Vec::new(), String::new()),
    };
    Ok(Compiled {
        name: "rust".into(),
        defaults,
        no_defaults_hint: hint,
    })
}

/// Whether `path` is a regular file under `root` with no symlink on the
/// way (from `root` down).
fn plain_path_under(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut here = root.to_path_buf();
    for part in rel.components() {
        here.push(part);
        match fs::symlink_metadata(&here) {
            Ok(meta) if !meta.file_type().is_symlink() => {}
            _ => return false,
        }
    }
    fs::symlink_metadata(&here).is_ok_and(|m| m.is_file())
}
