//! The API's bearer token: created once as `WPAAS_HOME/token` (mode 0600) and
//! compared in constant time.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::home::Home;

/// Returns the server's API token, creating [`Home::token`] (32 random bytes as 64 hex
/// characters, file mode 0600) on first use.
///
/// Creation is race-free: the token is written to a private temporary file
/// (`create_new`, mode 0600), synced, then hard-linked into place, so two servers or
/// CLIs starting together agree on one token and nobody ever reads a half-written file.
pub fn ensure_token(home: &Home) -> io::Result<String> {
    fs::create_dir_all(home.root())?;
    let path = home.token();
    match read_token(&path) {
        Ok(token) => return Ok(token),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }

    let token = random_hex(32)?;
    let tmp = write_private(home, &token)?;
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(home.root());
            Ok(token)
        }
        // Someone else won the race: theirs is the token.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_token(&path),
        Err(e) => Err(e),
    }
}

/// Makes `token` the home's token (a node adopting its cluster's): written
/// to a private temporary file, synced, then renamed over the old one, so
/// a reader sees the old token or the new, never half of one.
pub fn replace_token(home: &Home, token: &str) -> io::Result<()> {
    fs::create_dir_all(home.root())?;
    let tmp = write_private(home, token)?;
    fs::rename(&tmp, home.token())?;
    sync_dir(home.root());
    Ok(())
}

/// Writes `token` to a new private (0600) temporary file in the home,
/// synced; its path, to link or rename into place.
fn write_private(home: &Home, token: &str) -> io::Result<std::path::PathBuf> {
    let tmp = home.root().join(format!(".token.tmp-{}", random_hex(8)?));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(tmp)
}

/// Reads an existing token file; tightens its mode to 0600 if it was looser.
pub fn read_token(path: &Path) -> io::Result<String> {
    let text = fs::read_to_string(path)?;
    let token = text.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} does not hold a token; delete it to create a new one",
                path.display()
            ),
        ));
    }
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(token.to_string())
}

/// Compares two secrets without an early exit on the first differing byte.
/// (Lengths are not secret: tokens have a fixed length.)
pub fn constant_time_eq(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    let (a, b) = (a.as_ref(), b.as_ref());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `n` random bytes from the OS, hex-encoded.
pub(crate) fn random_hex(n: usize) -> io::Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(hex::encode(buf))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_token_with_mode_0600_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        let t1 = ensure_token(&home).unwrap();
        assert_eq!(t1.len(), 64);
        assert!(t1.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = fs::metadata(home.token()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let t2 = ensure_token(&home).unwrap();
        assert_eq!(t1, t2);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(home.root())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(names, vec![home.token()]);
    }

    #[test]
    fn a_replaced_token_is_read_back_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let first = ensure_token(&home).unwrap();
        replace_token(&home, "cluster-token").unwrap();
        assert_eq!(ensure_token(&home).unwrap(), "cluster-token");
        assert_ne!(first, "cluster-token");
        let mode = fs::metadata(home.token()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn fresh_homes_get_different_tokens() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        assert_ne!(
            ensure_token(&Home::new(a.path())).unwrap(),
            ensure_token(&Home::new(b.path())).unwrap()
        );
    }

    #[test]
    fn concurrent_first_start_agrees_on_one_token() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let tokens: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| ensure_token(&home).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(tokens.iter().all(|t| *t == tokens[0]));
    }

    #[test]
    fn loose_mode_is_tightened_and_empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let t = ensure_token(&home).unwrap();
        let path = home.token();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(ensure_token(&home).unwrap(), t);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        fs::write(&path, "  \n").unwrap();
        let err = ensure_token(&home).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
        assert!(constant_time_eq(b"", b""));
    }
}
