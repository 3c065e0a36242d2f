//! Who may push: HTTP Basic with any user name and the API token as the
//! password (what git sends), or a bearer token.

use super::super::token::constant_time_eq;

/// The user name of a request carrying the token: HTTP Basic with any user
/// name and the token as the password (what git sends), or a bearer token.
pub(super) fn authorized_user(headers: &http::HeaderMap, token: &str) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(given) = value.strip_prefix("Bearer ") {
        return constant_time_eq(given.trim(), token).then(|| "wpaas".to_string());
    }
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if !constant_time_eq(password, token) {
        return None;
    }
    let user = if user.is_empty() { "wpaas" } else { user };
    Some(user.to_string())
}

/// Standard base64 with padding (RFC 4648), as in HTTP Basic credentials.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, quad) in bytes.chunks(4).enumerate() {
        let last = i == bytes.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_takes_any_user_and_the_token() {
        let headers = |value: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        // "wpaas:secret", ":secret", "wpaas:wrong"
        assert_eq!(
            authorized_user(&headers("Basic d3BhYXM6c2VjcmV0"), "secret").as_deref(),
            Some("wpaas")
        );
        assert_eq!(
            authorized_user(&headers("Basic OnNlY3JldA=="), "secret").as_deref(),
            Some("wpaas")
        );
        assert_eq!(
            authorized_user(&headers("Basic d3BhYXM6d3Jvbmc="), "secret"),
            None
        );
        assert_eq!(
            authorized_user(&headers("Bearer secret"), "secret").as_deref(),
            Some("wpaas")
        );
        assert_eq!(authorized_user(&headers("Basic !!!!"), "secret"), None);
        assert_eq!(authorized_user(&http::HeaderMap::new(), "secret"), None);
    }

    #[test]
    fn base64_decodes_with_padding() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm9=v"), None);
        assert_eq!(base64_decode("Zg=").as_deref(), None);
        assert_eq!(base64_decode("Z==="), None);
    }
}
