//! Headers the router adds on the way in: X-Request-Id, X-Forwarded-For,
//! X-Forwarded-Proto and X-Forwarded-Port.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue};

/// The request id header, shared by request and response.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The headers the router sets, which apps trust.
const SET_HERE: [&str; 4] = [
    REQUEST_ID,
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
];

/// Sets the forwarding headers and returns the request id (a client-sent
/// one is kept when it is sane, as Heroku does, so ids can span services).
///
/// Look-alikes of these headers with `_` for `-` (`X_Forwarded_For`) are
/// removed: to HTTP they are other headers, but CGI (`HTTP_X_FORWARDED_FOR`)
/// and many frameworks fold `_` and `-` together, which would let a client
/// write the entries apps trust.
pub(crate) fn annotate(
    headers: &mut HeaderMap,
    remote: SocketAddr,
    local: SocketAddr,
) -> HeaderValue {
    let look_alikes: Vec<_> = headers
        .keys()
        .filter(|name| {
            name.as_str().contains('_')
                && SET_HERE.contains(&name.as_str().replace('_', "-").as_str())
        })
        .cloned()
        .collect();
    for name in look_alikes {
        headers.remove(name);
    }

    let request_id = headers
        .get(REQUEST_ID)
        .filter(|id| valid_request_id(id.as_bytes()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is ASCII")
        });
    headers.insert(REQUEST_ID, request_id.clone());

    let client = remote.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) if !earlier.trim().is_empty() => format!("{earlier}, {client}"),
        _ => client,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers.insert("x-forwarded-port", HeaderValue::from(local.port()));
    request_id
}

fn valid_request_id(id: &[u8]) -> bool {
    (20..=200).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_client_and_generates_id() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let id = annotate(
            &mut headers,
            "127.0.0.2:5555".parse().unwrap(),
            "127.0.0.1:3000".parse().unwrap(),
        );
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-port"], "3000");
        assert_eq!(id.len(), 36);
        assert_eq!(headers[REQUEST_ID], id);
    }

    #[test]
    fn look_alikes_with_underscores_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("x_forwarded_for", HeaderValue::from_static("6.6.6.6"));
        headers.insert("x-forwarded_proto", HeaderValue::from_static("https"));
        headers.insert("x_custom", HeaderValue::from_static("kept"));
        let addr: SocketAddr = "127.0.0.2:1".parse().unwrap();
        annotate(&mut headers, addr, addr);
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        assert!(headers.get("x_forwarded_for").is_none());
        assert!(headers.get("x-forwarded_proto").is_none());
        assert_eq!(headers["x_custom"], "kept");
    }

    #[test]
    fn keeps_a_sane_client_request_id() {
        let mut headers = HeaderMap::new();
        headers.insert(
            REQUEST_ID,
            HeaderValue::from_static("abcdefghij-0123456789"),
        );
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(annotate(&mut headers, addr, addr), "abcdefghij-0123456789");
        headers.insert(REQUEST_ID, HeaderValue::from_static("short"));
        assert_ne!(annotate(&mut headers, addr, addr), "short");
    }
}
