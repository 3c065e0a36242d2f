//! Slugs: the build's output, a directory of `.wasm` modules, a `Procfile`
//! and static files. A slug is identified by the sha256 of a deterministic
//! tar of its tree (paths sorted, mtimes and owners zeroed, modes reduced to
//! 0644/0755), so the same files always give the same digest.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

use crate::archive::{self, ArchiveError};

/// The slug's content digest: lowercase sha256 hex of its deterministic tar.
pub fn digest(slug_dir: &Path) -> Result<String, ArchiveError> {
    let tar = deterministic_tar(slug_dir)?;
    Ok(hex::encode(Sha256::digest(&tar)))
}

/// Packs the slug as a deterministic tar.gz (unpack with
/// [`archive::unpack`]), streamed into the file `out`; fails with [`ArchiveError::SlugTooLarge`],
/// writing nothing, when its files hold more than `max_bytes`. Returns the
/// size of the tar.gz.
pub fn pack_slug_file(slug_dir: &Path, out: &Path, max_bytes: u64) -> Result<u64, ArchiveError> {
    let io_err = |context: &str| {
        let context = context.to_string();
        move |source| ArchiveError::Io { context, source }
    };
    let paths = archive::all_paths(slug_dir)?;
    let mut size = 0u64;
    for path in &paths {
        let meta = fs::symlink_metadata(slug_dir.join(path))
            .map_err(io_err(&format!("reading {}", path.display())))?;
        if meta.is_file() {
            size = size.saturating_add(meta.len());
        }
    }
    if size > max_bytes {
        return Err(ArchiveError::SlugTooLarge {
            size,
            limit: max_bytes,
        });
    }
    let file = fs::File::create(out).map_err(io_err(&format!("creating {}", out.display())))?;
    let written = (|| {
        let gz = GzEncoder::new(BufWriter::new(file), Compression::default());
        let mut builder = tar::Builder::new(gz);
        archive::append_paths(&mut builder, slug_dir, &paths)?;
        let gz = builder.into_inner().map_err(io_err("finishing the tar"))?;
        let mut writer = gz.finish().map_err(io_err("compressing"))?;
        writer.flush().map_err(io_err("writing the slug"))?;
        let file = writer.into_inner().map_err(|e| ArchiveError::Io {
            context: "writing the slug".into(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err("writing the slug"))?;
        Ok(file.metadata().map_err(io_err("writing the slug"))?.len())
    })();
    if written.is_err() {
        let _ = fs::remove_file(out);
    }
    written
}

fn deterministic_tar(slug_dir: &Path) -> Result<Vec<u8>, ArchiveError> {
    let paths = archive::all_paths(slug_dir)?;
    archive::tar_paths(slug_dir, &paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn make(dir: &Path) {
        fs::create_dir_all(dir.join("public")).unwrap();
        fs::write(dir.join("app.wasm"), b"\0asm\x01\0\0\0").unwrap();
        fs::write(dir.join("Procfile"), "web: app.wasm\n").unwrap();
        fs::write(dir.join("public/index.html"), "<h1>hi</h1>").unwrap();
    }

    #[test]
    fn digest_depends_on_content_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        make(a.path());
        // Different creation order and times: same digest.
        fs::create_dir_all(b.path().join("public")).unwrap();
        fs::write(b.path().join("public/index.html"), "<h1>hi</h1>").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        fs::write(b.path().join("Procfile"), "web: app.wasm\n").unwrap();
        fs::write(b.path().join("app.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let d = digest(a.path()).unwrap();
        assert_eq!(d.len(), 64);
        assert_eq!(d, digest(b.path()).unwrap());

        let out = tempfile::tempdir().unwrap();
        let packed = |dir: &Path, name: &str| {
            let file = out.path().join(name);
            pack_slug_file(dir, &file, 1 << 20).unwrap();
            fs::read(file).unwrap()
        };
        assert_eq!(
            packed(a.path(), "a"),
            packed(b.path(), "b"),
            "tar.gz is deterministic"
        );

        fs::write(b.path().join("public/index.html"), "<h1>ho</h1>").unwrap();
        assert_ne!(d, digest(b.path()).unwrap());
    }

    #[test]
    fn a_slug_file_is_capped_and_unpacks_like_the_packed_one() {
        let a = tempfile::tempdir().unwrap();
        make(a.path());
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("slug.tar.gz");
        let err = pack_slug_file(a.path(), &file, 10).unwrap_err();
        assert!(
            matches!(err, ArchiveError::SlugTooLarge { limit: 10, .. }),
            "{err}"
        );
        assert!(!file.exists());
        let len = pack_slug_file(a.path(), &file, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), len);
        let dest = out.path().join("slug");
        archive::unpack(std::fs::File::open(&file).unwrap(), &dest, 1 << 20).unwrap();
        assert_eq!(digest(&dest).unwrap(), digest(a.path()).unwrap());
    }
}
