//! Every builder error that wraps another says its own part only: the
//! wrapped error is its `source()`, so a printed cause chain (the CLI's
//! `error:` line, anyhow's `{:#}` in the server) names each cause once.

use std::error::Error;
use std::io;

use crate::archive::{self, ArchiveError};
use crate::buildpack::{io_err, BuildError};
use crate::procfile::Procfile;
use crate::source::{SourceError, Upload};

/// The cause chain as anyhow's `{:#}` prints it: `outer: inner: …`.
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut causes = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    causes.join(": ")
}

/// What is wrong with how `err` prints `cause`: a wrapper that says its
/// source in its own message, or `cause` shown other than exactly once.
fn misprinted(err: &(dyn Error + 'static), cause: &str) -> Option<String> {
    let mut outer = err;
    while let Some(inner) = outer.source() {
        if outer.to_string().contains(&inner.to_string()) {
            return Some(format!(
                "{outer:?} says its source {inner:?} in its own message"
            ));
        }
        outer = inner;
    }
    let printed = chain(err);
    match printed.matches(cause).count() {
        1 => None,
        n => Some(format!("{cause:?} shows {n} times in {printed:?}")),
    }
}

fn shows_once(err: &(dyn Error + 'static), cause: &str) {
    if let Some(problem) = misprinted(err, cause) {
        panic!("{problem}");
    }
}

/// The OS error `err` wraps, as it prints.
fn os_error(err: &(dyn Error + 'static)) -> String {
    err.source()
        .expect("the OS error is the source")
        .to_string()
}

fn not_found() -> String {
    io::Error::from(io::ErrorKind::NotFound).to_string()
}

#[test]
fn an_unreadable_app_dir_names_the_os_error_once() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing-dir");
    let err = Upload::plan(&missing).unwrap_err();
    assert!(matches!(err, SourceError::Read { .. }), "{err}");
    // The OS's own words ("No such file or directory (os error 2)"), and
    // the path, each once.
    let os = os_error(&err);
    shows_once(&err, &os);
    shows_once(&err, &missing.display().to_string());
}

#[test]
fn an_archive_io_error_names_the_os_error_once() {
    let t = tempfile::tempdir().unwrap();
    // The destination's parent is a file, so it cannot be created.
    std::fs::write(t.path().join("file"), "").unwrap();
    let gzip_magic = [0x1f, 0x8b, 0, 0];
    let err = archive::unpack(&gzip_magic[..], &t.path().join("file/dest"), 1 << 20).unwrap_err();
    assert!(matches!(err, ArchiveError::Io { .. }), "{err}");
    let os = os_error(&err);
    shows_once(&err, &os);
    // Wrapped in a build error, it is still said once.
    shows_once(&BuildError::Slug(err), &os);
}

#[test]
fn a_build_io_error_names_the_os_error_once() {
    let err = io_err("writing the Procfile")(io::Error::from(io::ErrorKind::NotFound));
    shows_once(&err, &not_found());
    shows_once(&err, "writing the Procfile");
}

#[test]
fn invalid_default_types_name_the_procfile_error_once() {
    let source = Procfile::from_pairs([("Web!", "app.wasm")]).unwrap_err();
    let why = source.to_string();
    let err = BuildError::DefaultTypes {
        buildpack: "custom".into(),
        source,
    };
    shows_once(&err, &why);
    assert!(chain(&err).starts_with("the default process types of buildpack custom are invalid: "));
}

#[test]
fn the_chain_check_catches_a_repeated_cause() {
    #[derive(Debug, thiserror::Error)]
    #[error("could not read app: {source}")]
    struct Repeats {
        source: io::Error,
    }
    let err = Repeats {
        source: io::Error::from(io::ErrorKind::NotFound),
    };
    let problem = misprinted(&err, &not_found()).expect("a repeated cause is caught");
    assert!(problem.contains("says its source"), "{problem}");
    // A cause the chain never shows is caught too.
    let bare = io::Error::from(io::ErrorKind::NotFound);
    assert!(misprinted(&bare, "could not read app").is_some());
}
