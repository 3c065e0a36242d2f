//! Outbound `wasi:http` requests: which destinations a guest may reach.
//!
//! A guest may call the internet, but not the machine it runs on or its
//! network: the control API listens on loopback, the cloud metadata endpoint
//! (169.254.169.254) hands out credentials, and the LAN is not the app's to
//! scan. [`OutboundHooks::send_request`] resolves the destination once,
//! refuses the request with `http-request-denied` if any address is
//! [`is_forbidden`], and otherwise connects to the address it checked.
//!
//! **DNS rebinding.** A name that resolves to a public address for the check
//! and to 127.0.0.1 a moment later must not get through. For `http` the
//! request's URI is rewritten to the checked `IP:port` before
//! [`default_send_request`] sees it (the `Host` header keeps the name), so
//! there is no second lookup. For `https` with a host *name* that rewrite
//! would break SNI and certificate verification, and wasmtime-wasi-http 48
//! offers no way to hand `default_send_request` a resolved address; it
//! resolves the name again. What is left is a blind TCP connect plus a TLS
//! ClientHello to the rebound address: the handshake only completes if that
//! service presents a publicly trusted certificate for the attacker's name,
//! so no HTTP request reaches it. Closing that needs our own TLS connector
//! (rustls + webpki-roots as direct dependencies).
//!
//! Only the first resolved address is used (the resolver's RFC 6724 order
//! puts unusable families last); there is no fallback to the next one, since
//! the request body can be sent only once.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http::uri::{Scheme, Uri};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{default_send_request, Error, RequestOptions, WasiBody, WasiHttpHooks};

/// How long resolving a destination may take before the guest gets
/// `dns-timeout`.
const DNS_TIMEOUT: Duration = Duration::from_secs(10);

/// IPv4 ranges no guest may reach.
const FORBIDDEN_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", incl. 0.0.0.0
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // carrier-grade NAT
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback: the control API
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local: cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, incl. broadcast
];

/// IPv6 ranges no guest may reach. Ranges that embed an IPv4 address are
/// judged by that address instead (see [`embedded_v4`]).
const FORBIDDEN_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::UNSPECIFIED, 128),
    (Ipv6Addr::LOCALHOST, 128),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32), // Teredo (tunnels to an unknown v4)
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48), // benchmarking
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local (the v6 LAN)
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

/// Whether a guest must not connect to `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => v4_forbidden(ip),
        IpAddr::V6(ip) => {
            FORBIDDEN_V6.iter().any(|&(net, len)| in_v6(ip, net, len))
                || embedded_v4(ip).is_some_and(v4_forbidden)
        }
    }
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    FORBIDDEN_V4.iter().any(|&(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(net) & mask
    })
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The IPv4 address an IPv6 address stands for, where packets to it end up
/// there: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d` and 6to4 `2002:AABB:CCDD::/48`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from(bits as u32);
    let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    if bits >> 32 == 0xffff || bits >> 32 == 0 || in_v6(ip, nat64, 96) {
        Some(low)
    } else if ip.segments()[0] == 0x2002 {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

/// The `wasi:http` hooks of one instance: default behaviour, except that
/// outgoing requests are checked against [`is_forbidden`].
pub struct OutboundHooks {
    allow_private: bool,
}

impl OutboundHooks {
    /// `allow_private` skips the check (local development only); the request
    /// still goes to the address resolved here.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        let allow_private = self.allow_private;
        Box::new(async move {
            let request = pin_destination(request, allow_private).await?;
            let (response, io) = default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}

/// Resolves the request's destination, checks it, and for `http` points the
/// URI at the checked address so nothing resolves the name again.
async fn pin_destination(
    mut request: http::Request<WasiBody>,
    allow_private: bool,
) -> Result<http::Request<WasiBody>, Error> {
    let uri = request.uri();
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    // `host()` keeps an IPv6 literal's brackets, so this parses as
    // `[::1]:80` as well as `example.com:80`.
    let destination = format!("{}:{port}", authority.host());

    let addrs = lookup_all(&destination).await?;
    let addr = *addrs.first().ok_or(Error::DnsError {
        rcode: Some("no addresses".into()),
        info_code: None,
    })?;
    // Every address is checked, so the answer does not depend on the
    // resolver's order.
    if let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        if !allow_private {
            tracing::warn!(
                %destination,
                address = %bad.ip(),
                "outbound request denied: private address \
                 (`wpaas up --allow-private-network` allows it)"
            );
            return Err(Error::HttpRequestDenied);
        }
    }

    if !https {
        let mut parts = uri.clone().into_parts();
        parts.authority = Some(
            addr.to_string()
                .parse()
                .map_err(|_| Error::HttpRequestUriInvalid)?,
        );
        *request.uri_mut() = Uri::from_parts(parts).map_err(|_| Error::HttpRequestUriInvalid)?;
    }
    Ok(request)
}

async fn lookup_all(destination: &str) -> Result<Vec<SocketAddr>, Error> {
    match tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host(destination)).await {
        Err(_) => Err(Error::DnsTimeout),
        Ok(Err(err)) => Err(Error::DnsError {
            rcode: Some(err.to_string()),
            info_code: None,
        }),
        Ok(Ok(addrs)) => Ok(addrs.collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(ip: &str) -> bool {
        is_forbidden(ip.parse().unwrap())
    }

    #[test]
    fn private_and_special_ipv4_is_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_ipv4_is_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            // Just outside the private and special ranges.
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn private_and_special_ipv6_is_forbidden() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            "2001:0:4136:e378::1",
            "100::1",
            "64:ff9b:1::1",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn ipv6_forms_of_forbidden_ipv4_are_forbidden() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::ffff:192.168.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2002:c0a8:101::1",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_ipv6_is_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "fbff:ffff::1",
            "fe7f::1",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn loopback_names_are_denied_before_connecting() {
        let request = |uri: &str| {
            http::Request::get(uri)
                .body(
                    http_body_util::Empty::new()
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                )
                .unwrap()
        };
        for uri in [
            "http://localhost:1/",
            "http://127.0.0.1:1/",
            "http://[::1]/",
            "https://169.254.169.254/",
        ] {
            let result = pin_destination(request(uri), false).await;
            assert!(
                matches!(result, Err(Error::HttpRequestDenied)),
                "{uri}: {result:?}"
            );
        }
        // Allowed, an http request is pinned to the address the name
        // resolved to; path and query stay.
        let pinned = pin_destination(request("http://localhost:8/x?y"), true)
            .await
            .unwrap();
        let host = pinned.uri().host().unwrap();
        let ip: IpAddr = host.trim_matches(['[', ']']).parse().unwrap();
        assert!(ip.is_loopback(), "{}", pinned.uri());
        assert_eq!(pinned.uri().port_u16(), Some(8));
        assert_eq!(pinned.uri().path_and_query().unwrap(), "/x?y");
    }
}
