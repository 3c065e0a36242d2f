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
//! and to 127.0.0.1 a moment later must not get through, so nothing resolves
//! the name again: [`send_to`] connects to the address that was checked, and
//! for `https` verifies the server's certificate against the *name* (SNI and
//! the webpki roots, as wasmtime-wasi-http's own sender does). That is why
//! wpaas sends outbound requests itself rather than through
//! `default_send_request`, which takes only a URI and resolves it again.
//!
//! Only the first resolved address is used (the resolver's RFC 6724 order
//! puts unusable families last); there is no fallback to the next one, since
//! the request body can be sent only once.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Scheme, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

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
pub(crate) fn is_forbidden(ip: IpAddr) -> bool {
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
/// outgoing requests are checked against [`is_forbidden`] and at most
/// `max_connections` of them are open at once.
pub(crate) struct OutboundHooks {
    allow_private: bool,
    /// One permit per outgoing connection the instance may have open; a
    /// permit is held until the connection ends.
    connections: Arc<tokio::sync::Semaphore>,
}

impl OutboundHooks {
    /// `allow_private` skips the check (local development only); the request
    /// still goes to the address resolved here. Beyond `max_connections`
    /// open requests the guest gets `connection-limit-reached`.
    pub fn new(allow_private: bool, max_connections: usize) -> Self {
        Self {
            allow_private,
            connections: Arc::new(tokio::sync::Semaphore::new(max_connections)),
        }
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
        let permit = self.connections.clone().try_acquire_owned();
        Box::new(async move {
            let permit = permit.map_err(|_| {
                tracing::warn!("outbound request refused: too many open at once");
                Error::ConnectionLimitReached
            })?;
            let destination = check_destination(request.uri(), allow_private).await?;
            send_to(&destination, request, options, web_pki(), permit).await
        })
    }
}

/// Where a checked request goes.
#[derive(Debug)]
struct Destination {
    /// The address that was checked: the one connected to.
    addr: SocketAddr,
    /// For `https`, the name the server's certificate must be for.
    tls_name: Option<ServerName<'static>>,
}

/// Resolves the request's destination once and checks every address.
async fn check_destination(uri: &Uri, allow_private: bool) -> Result<Destination, Error> {
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
    let tls_name = if https {
        let host = authority.host().trim_matches(['[', ']']);
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::from(ip),
            Err(_) => {
                ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?
            }
        };
        Some(name)
    } else {
        None
    };
    Ok(Destination { addr, tls_name })
}

/// Trust in the public web PKI (webpki-roots), built once.
fn web_pki() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// The guest's time limits for one request (wasmtime's defaults: 600 s).
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    fn new(options: Option<RequestOptions>) -> Self {
        const DEFAULT: Duration = Duration::from_secs(600);
        let options = options.unwrap_or_default();
        Self {
            connect: options.connect_timeout.unwrap_or(DEFAULT),
            first_byte: options.first_byte_timeout.unwrap_or(DEFAULT),
            // A zero gap would time out every wait; treat it as "tiny".
            between_bytes: options
                .between_bytes_timeout
                .unwrap_or(DEFAULT)
                .max(Duration::from_nanos(1)),
        }
    }
}

/// Sends `request` over HTTP/1.1 to `destination` (TLS for https). The
/// returned future ends with the connection and reports how it ended;
/// `permit` is held as long as the connection lives.
async fn send_to(
    destination: &Destination,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    tls: Arc<rustls::ClientConfig>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let timeouts = Timeouts::new(options);
    let tcp = tokio::time::timeout(timeouts.connect, TcpStream::connect(destination.addr))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    match &destination.tls_name {
        None => exchange(tcp, request, &timeouts, permit).await,
        Some(name) => {
            let connector = tokio_rustls::TlsConnector::from(tls);
            let stream =
                tokio::time::timeout(timeouts.connect, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| Error::ConnectionTimeout)?
                    .map_err(Error::Tls)?;
            exchange(stream, request, &timeouts, permit).await
        }
    }
}

/// One request and its response over a connected `stream`.
async fn exchange<S>(
    stream: S,
    mut request: http::Request<WasiBody>,
    timeouts: &Timeouts,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<(http::Response<WasiBody>, IoFuture), Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = tokio::time::timeout(
        timeouts.connect,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The connection runs on its own; its outcome is the guest's to read.
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _permit = permit;
        let _ = ended_tx.send(connection.await);
    });
    // On the wire the request line carries only the path (the Host header
    // names the server).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let gap = timeouts.between_bytes;
    let response = response.map(|incoming| {
        Paced {
            incoming,
            gap,
            idle: Box::pin(tokio::time::sleep(gap)),
        }
        .boxed_unsync()
    });
    let io: IoFuture = Box::new(async move {
        match ended.await {
            Ok(Err(err)) if err.is_timeout() => Err(Error::HttpResponseTimeout),
            Ok(Err(err)) => Err(err.into()),
            Ok(Ok(())) | Err(_) => Ok(()),
        }
    });
    Ok((response, io))
}

/// A response body that fails when the server pauses longer than `gap`
/// between frames.
struct Paced {
    incoming: hyper::body::Incoming,
    gap: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.gap;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) if err.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
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

    fn request(uri: &str) -> http::Request<WasiBody> {
        http::Request::get(uri)
            .header(http::header::HOST, "pinned.test")
            .body(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    #[tokio::test]
    async fn loopback_names_are_denied_before_connecting() {
        for uri in [
            "http://localhost:1/",
            "http://127.0.0.1:1/",
            "http://[::1]/",
            "https://169.254.169.254/",
        ] {
            let uri: Uri = uri.parse().unwrap();
            let result = check_destination(&uri, false).await;
            assert!(
                matches!(result, Err(Error::HttpRequestDenied)),
                "{uri}: {result:?}"
            );
        }
        // Allowed, the request goes to the address the name resolved to,
        // and https keeps the name for the certificate.
        let uri: Uri = "https://localhost:8/x?y".parse().unwrap();
        let destination = check_destination(&uri, true).await.unwrap();
        assert!(destination.addr.ip().is_loopback(), "{destination:?}");
        assert_eq!(destination.addr.port(), 8);
        assert_eq!(
            destination.tls_name,
            Some(ServerName::try_from("localhost").unwrap())
        );
    }

    /// Serves HTTP/1.1 on `listener` (over TLS with the `pinned.test`
    /// certificate when `tls`), answering `PATH on HOST`.
    fn serve_once(listener: tokio::net::TcpListener, tls: bool) {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let acceptor = tls.then(|| {
            let cert = CertificateDer::from(include_bytes!("testdata/pinned-test.der").to_vec());
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                include_bytes!("testdata/pinned-test.key.der").to_vec(),
            ));
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let host = req.headers()[http::header::HOST]
                        .to_str()
                        .unwrap()
                        .to_string();
                    let text = format!("{} on {host}", req.uri());
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(Bytes::from(text)),
                    ))
                },
            );
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    // A client that refuses the certificate ends here.
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
    }

    /// Trust in the test CA only.
    fn test_pki() -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(include_bytes!("testdata/ca.der").to_vec().into())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    async fn body_text(response: http::Response<WasiBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn https_goes_to_the_checked_address_and_verifies_the_name() {
        // `pinned.test` resolves nowhere: the request can only arrive by
        // going to the address it was given, with the name kept for TLS.
        let pinned = |addr, name: &str| Destination {
            addr,
            tls_name: Some(ServerName::try_from(name.to_string()).unwrap()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        serve_once(listener, true);
        let (response, io) = send_to(
            &pinned(addr, "pinned.test"),
            request("https://pinned.test/hello?x=1"),
            None,
            test_pki(),
            permit(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_text(response).await, "/hello?x=1 on pinned.test");
        Pin::from(io).await.unwrap();

        // The certificate is checked against the name, and against the
        // roots: another name, or the public roots, are refused.
        for (name, roots) in [("other.test", test_pki()), ("pinned.test", web_pki())] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            serve_once(listener, true);
            let result = send_to(
                &pinned(addr, name),
                request("https://pinned.test/"),
                None,
                roots,
                permit(),
            )
            .await;
            assert!(
                matches!(result, Err(Error::Tls(_))),
                "{name}: {:?}",
                result.map(|r| r.0.status())
            );
        }
    }

    #[tokio::test]
    async fn http_goes_to_the_checked_address_with_the_path_alone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        serve_once(listener, false);
        let destination = Destination {
            addr,
            tls_name: None,
        };
        let (response, _io) = send_to(
            &destination,
            request("http://pinned.test/x?y"),
            None,
            web_pki(),
            permit(),
        )
        .await
        .unwrap();
        assert_eq!(body_text(response).await, "/x?y on pinned.test");
    }

    fn permit() -> tokio::sync::OwnedSemaphorePermit {
        Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap()
    }

    #[tokio::test]
    async fn an_instance_may_have_only_so_many_requests_open() {
        let mut hooks = OutboundHooks::new(false, 1);
        let idle = || -> IoFuture { Box::new(async { Ok(()) }) };
        // The first request holds the only permit from the moment it is
        // sent (it is never polled here: it stays open).
        let first = hooks.send_request(request("http://127.0.0.1:1/"), None, idle());
        let second = Pin::from(hooks.send_request(request("http://127.0.0.1:1/"), None, idle()));
        assert!(matches!(second.await, Err(Error::ConnectionLimitReached)));
        drop(first);
        // Dropped unsent, the first gives its permit back.
        let third = Pin::from(hooks.send_request(request("http://127.0.0.1:1/"), None, idle()));
        assert!(matches!(third.await, Err(Error::HttpRequestDenied)));
    }
}
