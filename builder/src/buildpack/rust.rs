//! The `rust` buildpack: `cargo build --release` for WASI, with cargo's
//! target directory in the app's build cache.

use std::fs;

use super::{io_err, BuildError, Compiled, Ctx};
use crate::rust::{self as compile_step, CompileOptions};

pub(super) fn build(ctx: &mut Ctx<'_>) -> Result<Compiled, BuildError> {
    let slug = ctx.req.slug_dir.clone();
    ctx.step("Rust app detected");
    let opts = CompileOptions {
        target_dir: Some(ctx.req.cache_dir.join("target")),
        stream: true,
        deadline: Some(ctx.deadline),
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
    for wasm in &compiled.artifacts {
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
