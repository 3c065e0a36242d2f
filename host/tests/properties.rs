//! Property tests for the host's user-facing parsers: sizes and durations
//! (flags, `ps:limits`), config keys, custom domains, and the Host header
//! the router picks an app by.

use std::time::Duration;

use proptest::prelude::*;
use wpaas_host::control::store::{normalize_domain, validate_app_name, validate_config_key};
use wpaas_host::router::{AppRoute, RouteTable};
use wpaas_host::runtime::limits::{parse_duration, parse_size};

const UNITS: [(&str, u32); 10] = [
    ("", 0),
    ("B", 0),
    ("K", 10),
    ("k", 10),
    ("KiB", 10),
    ("M", 20),
    ("MB", 20),
    ("m", 20),
    ("G", 30),
    ("GiB", 30),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text: a size or a one-line error, never a panic or a wrapped value.
    #[test]
    fn sizes_never_panic(text in "(?s).{0,24}") {
        if let Err(e) = parse_size(&text) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    /// `N<unit>` is exactly N << shift, or refused as too large: never wrapped.
    #[test]
    fn sizes_scale_exactly(n in any::<u64>(), unit in 0..UNITS.len()) {
        let (suffix, shift) = UNITS[unit];
        let expected = usize::try_from(n).ok().and_then(|n| n.checked_mul(1usize << shift));
        prop_assert_eq!(parse_size(&format!("{n}{suffix}")).ok(), expected);
    }

    #[test]
    fn durations_never_panic(text in "(?s).{0,24}") {
        if let Err(e) = parse_duration(&text) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    /// `Nms`, `Ns`, `Nm` and bare `N` mean what they say, or are refused as
    /// too large: a huge number of minutes never wraps into a short timeout.
    #[test]
    fn durations_scale_exactly(n in any::<u64>(), unit in 0..4usize) {
        let (text, expected) = match unit {
            0 => (format!("{n}ms"), Some(Duration::from_millis(n))),
            1 => (format!("{n}s"), Some(Duration::from_secs(n))),
            2 => (format!("{n}m"), n.checked_mul(60).map(Duration::from_secs)),
            _ => (format!("{n}"), Some(Duration::from_secs(n))),
        };
        prop_assert_eq!(parse_duration(&text).ok(), expected);
    }

    /// A config key is accepted exactly when it is `[A-Za-z_][A-Za-z0-9_]*`,
    /// which also makes it a safe file name in a buildpack's ENV_DIR.
    #[test]
    fn config_keys_are_identifiers(key in "(?s).{0,12}|[A-Za-z_][A-Za-z0-9_]{0,10}") {
        let rule = !key.is_empty()
            && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        prop_assert_eq!(validate_config_key(&key).is_ok(), rule);
        if rule {
            prop_assert!(!key.contains('/') && key != "." && key != ".." && !key.contains('\0'));
        }
    }

    /// A normalised domain is lower case, has no trailing dot, is at most
    /// 253 bytes of valid labels, and normalising it again changes nothing.
    #[test]
    fn domains_normalise_to_host_names(domain in "(?s).{0,30}|[A-Za-z0-9-]{1,12}(\\.[A-Za-z0-9-]{1,12}){0,3}\\.?") {
        if let Ok(d) = normalize_domain(&domain) {
            prop_assert!(d.len() <= 253 && !d.ends_with('.'));
            prop_assert!(d.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'));
            prop_assert!(d.split('.').all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')));
            prop_assert_eq!(normalize_domain(&d).ok(), Some(d.clone()));
        }
    }

    /// Whatever the Host header says, the router finds the app it names (in
    /// any case, with any port) or nothing, and never panics.
    #[test]
    fn hosts_route_to_the_named_app(
        app in "[a-z][a-z0-9-]{1,20}",
        upper in any::<bool>(),
        port in proptest::option::of(any::<u16>()),
        junk in "(?s).{0,40}",
    ) {
        prop_assume!(validate_app_name(&app).is_ok());
        let table = RouteTable::new();
        table.set_app(AppRoute { name: app.clone(), web: None });
        let mut host = format!("{app}.localhost");
        if upper {
            host = host.to_ascii_uppercase();
        }
        if let Some(port) = port {
            host = format!("{host}:{port}");
        }
        prop_assert_eq!(table.lookup(Some(&host)).map(|a| a.name.clone()), Some(app.clone()));
        // Arbitrary junk routes to nothing unless it really names the app.
        if let Some(found) = table.lookup(Some(&junk)) {
            prop_assert!(
                junk.to_ascii_lowercase().contains(&format!("{app}.localhost")),
                "{junk:?} routed to {}", found.name
            );
        }
    }
}
