//! The `wasm` buildpack: ready `.wasm` (and `.wat`) files, used as they are.

use std::fs;
use std::path::Path;

use super::{io_err, BuildError, Compiled, Ctx};
use crate::procfile::files_with_ext;

/// Whether the source holds `.wasm` or `.wat` files.
pub(super) fn detect(slug: &Path) -> bool {
    !files_with_ext(slug, "wasm").is_empty() || !files_with_ext(slug, "wat").is_empty()
}

/// Assembles `.wat` files that have no `.wasm` twin and picks the defaults.
pub(super) fn build(ctx: &mut Ctx<'_>) -> Result<Compiled, BuildError> {
    let slug = ctx.req.slug_dir.clone();
    ctx.step("WebAssembly app detected");
    for wat in files_with_ext(&slug, "wat") {
        let wasm = wat.with_extension("wasm");
        if slug.join(&wasm).exists() {
            continue;
        }
        let shown = wat.display().to_string();
        let bytes = wat::parse_file(slug.join(&wat)).map_err(|e| BuildError::Wat {
            path: shown.clone(),
            message: e.to_string().lines().next().unwrap_or_default().to_string(),
        })?;
        fs::write(slug.join(&wasm), bytes)
            .map_err(io_err(format!("writing {}", wasm.display())))?;
        ctx.detail(&format!("Assembled {shown} -> {}", wasm.display()));
    }
    let modules = files_with_ext(&slug, "wasm");
    for m in &modules {
        let size = fs::metadata(slug.join(m)).map(|m| m.len()).unwrap_or(0);
        ctx.detail(&format!("Found {} ({size} bytes)", m.display()));
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
        name: "wasm".into(),
        defaults,
        no_defaults_hint: hint,
    })
}
