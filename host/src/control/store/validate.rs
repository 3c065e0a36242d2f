//! The rules names must follow before they reach a record or a path: app
//! names, config keys, custom domains (and the ones no app may have), slug
//! digests and build ids.

use super::StoreError;

/// `^[a-z][a-z0-9-]{1,29}$`
pub fn validate_app_name(name: &str) -> Result<(), StoreError> {
    let b = name.as_bytes();
    let ok = (2..=30).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidAppName(name.to_string()))
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`
pub fn validate_config_key(key: &str) -> Result<(), StoreError> {
    let b = key.as_bytes();
    let ok = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidConfigKey(key.to_string()))
    }
}

/// Lower-cases a domain (dropping one trailing dot) and checks it is a host name:
/// dot-separated labels of 1-63 letters, digits and dashes, not starting or ending
/// with a dash, at most 253 characters. (Internationalised names are given in
/// punycode, `xn--…`.)
pub fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    let d = domain.trim().to_ascii_lowercase();
    let d = d.strip_suffix('.').unwrap_or(&d).to_string();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(StoreError::InvalidDomain(domain.to_string()))
    }
}

/// Why a (normalized) domain cannot be an app's custom domain, if it cannot:
/// the router's own names (`localhost` and every `*.localhost`, which it
/// derives as `APP.localhost` for each app — a custom domain is looked up
/// first, so it would take another app's traffic) and IP addresses (a
/// last label of digits only: no top-level domain is numeric).
pub fn reserved_domain(domain: &str) -> Option<&'static str> {
    if domain == "localhost" || domain.ends_with(".localhost") {
        return Some(
            "localhost and *.localhost are the router's own names (APP.localhost reaches app APP)",
        );
    }
    let last = domain.rsplit('.').next().unwrap_or(domain);
    if last.bytes().all(|c| c.is_ascii_digit()) {
        return Some("IP addresses are not domains");
    }
    None
}

/// A domain an app may claim: normalized, and not reserved.
pub fn claimable_domain(domain: &str) -> Result<String, StoreError> {
    let domain = normalize_domain(domain)?;
    match reserved_domain(&domain) {
        Some(reason) => Err(StoreError::ReservedDomain { domain, reason }),
        None => Ok(domain),
    }
}

/// A sha256 digest in lower-case hex: the name of a stored slug.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// `b<digits>`: the shape of a build id (so that user input naming a build
/// can never name another path).
pub fn is_build_id(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= 21
        && s.starts_with('b')
        && s[1..].bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_validated() {
        for ok in ["ab", "hello", "my-app-2", "a-", &"a".repeat(30)] {
            validate_app_name(ok).unwrap();
        }
        for bad in [
            "",
            "a",
            "1app",
            "-app",
            "App",
            "my_app",
            "a.b",
            &"a".repeat(31),
            "é",
        ] {
            assert!(
                matches!(validate_app_name(bad), Err(StoreError::InvalidAppName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn config_keys_are_validated() {
        for ok in ["A", "_", "FOO_BAR", "x1", "_9"] {
            validate_config_key(ok).unwrap();
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "é"] {
            assert!(validate_config_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn router_names_and_addresses_are_reserved() {
        for name in [
            "victim.localhost",
            "VICTIM.localhost.",
            "web.victim.localhost",
            "localhost",
            "127.0.0.1",
            "10.0.0.1.",
            "1",
        ] {
            assert!(
                matches!(
                    claimable_domain(name),
                    Err(StoreError::ReservedDomain { .. })
                ),
                "{name}"
            );
        }
        for name in ["::1", "[::1]", "under_score.com", "a..b", &"x".repeat(64)] {
            assert!(
                matches!(claimable_domain(name), Err(StoreError::InvalidDomain(_))),
                "{name}"
            );
        }
        for name in [
            "xn--bcher-kva.example",
            "1.example.com",
            "intranet",
            "localhost.example.com",
        ] {
            claimable_domain(name).unwrap();
        }
    }

    #[test]
    fn build_ids_and_digests_are_one_path_component() {
        assert!(is_build_id("b1") && is_build_id("b12345"));
        for bad in ["b", "1", "b1/..", "../../etc/passwd", "bx"] {
            assert!(!is_build_id(bad), "{bad}");
        }
        assert!(is_digest(&"a".repeat(64)));
        assert!(!is_digest("../db") && !is_digest(&"A".repeat(64)));
    }
}
