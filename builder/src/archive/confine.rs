//! Path confinement: entry paths and link targets that stay inside the
//! destination, checked lexically as entries arrive and for real once the
//! tree is complete.

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

use super::error::ArchiveError;

/// The entry path as a clean relative path (no `.`), or why not.
pub(super) fn safe_relative(raw: &[u8], shown: &str) -> Result<PathBuf, ArchiveError> {
    let text = String::from_utf8_lossy(raw);
    let path = Path::new(text.as_ref());
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ArchiveError::ParentDir {
                    path: shown.to_string(),
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ArchiveError::AbsolutePath {
                    path: shown.to_string(),
                })
            }
        }
    }
    Ok(clean)
}

/// Whether a symlink at `rel` pointing at relative `target` climbs above the root.
pub(super) fn escapes_lexically(rel: &Path, target: &str) -> bool {
    let mut depth = rel.components().count() as i64 - 1; // the link's directory
    for c in Path::new(target).components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

/// Resolves the symlink at `root/rel` component by component, following
/// links inside the tree, and reports whether it stays inside `root`.
pub(super) fn resolves_inside(root: &Path, rel: &Path) -> bool {
    let mut stack: Vec<OsString> = rel
        .parent()
        .map(|p| p.iter().map(|s| s.to_os_string()).collect())
        .unwrap_or_default();
    let Ok(target) = fs::read_link(root.join(rel)) else {
        return false;
    };
    let mut budget = 64;
    walk_components(root, &mut stack, &target, &mut budget)
}

fn walk_components(root: &Path, stack: &mut Vec<OsString>, path: &Path, budget: &mut u32) -> bool {
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if stack.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
            Component::Normal(name) => {
                stack.push(name.to_os_string());
                let here: PathBuf = stack.iter().fold(root.to_path_buf(), |p, s| p.join(s));
                if fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink()) {
                    if *budget == 0 {
                        return false;
                    }
                    *budget -= 1;
                    let Ok(next) = fs::read_link(&here) else {
                        return false;
                    };
                    stack.pop();
                    if !walk_components(root, stack, &next, budget) {
                        return false;
                    }
                }
            }
        }
    }
    true
}

pub(super) fn check_no_symlink_ancestor(
    root: &Path,
    rel: &Path,
    shown: &str,
) -> Result<(), ArchiveError> {
    let mut here = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        here.push(c);
        if fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ArchiveError::ThroughSymlink {
                path: shown.to_string(),
            });
        }
    }
    Ok(())
}
