//! Web processes that are WASI preview-1 core modules, run CGI-style (WAGI):
//! the request arrives as CGI environment variables plus the body on stdin,
//! and the module's stdout is parsed as a CGI response.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Engine, InstancePre, Linker, Module, Store, StoreLimits};
use wasmtime_wasi::cli::AsyncStdinStream;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::I32Exit;

use super::admission::Slot;
use super::body::{BodyReader, BodyVerdict};
use super::buffer::{Budget, BudgetedOutput, OutputFault};
use super::error::WebError;
use super::limits::Limits;
use super::sandbox;
use super::{BoxBody, ProcessEnv};

struct WagiState {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

impl sandbox::HasLimits for WagiState {
    fn limits(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }
}

/// A linked WAGI module.
pub(crate) struct WagiModule {
    pre: InstancePre<WagiState>,
    limits: Limits,
    /// Where buffered stdout is counted, server-wide.
    budget: Budget,
}

/// Facts about the request that CGI wants and the HTTP request lacks.
pub(crate) struct CgiContext {
    /// The client's address as the router saw it.
    pub remote: SocketAddr,
    /// The address the router accepted the connection on.
    pub local: SocketAddr,
}

impl WagiModule {
    /// Links `module` against WASI preview 1; its output buffers draw on
    /// `budget`.
    pub fn new(engine: &Engine, module: &Module, limits: Limits, budget: Budget) -> Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut WagiState| &mut s.wasi)
            .map_err(anyhow::Error::from)?;
        let pre = linker
            .instantiate_pre(module)
            .map_err(anyhow::Error::from)
            .context("the module imports something WASI preview 1 does not provide")?;
        if module.get_export("_start").is_none() {
            anyhow::bail!("a WAGI module must be a WASI command exporting `_start`");
        }
        Ok(Self {
            pre,
            limits,
            budget,
        })
    }

    /// Runs the module once for `req`, whose body is already guarded
    /// (size limit, idle timeout) and reports faults to `verdict`.
    ///
    /// The body streams to the module's stdin as it arrives; nothing of it
    /// is buffered beyond a chunk or two. The module's stdout is buffered
    /// (the CGI headers must be parsed before anything is sent), under the
    /// server-wide [`Budget`], until the response has been sent.
    pub async fn serve<B: super::RequestBody>(
        &self,
        req: hyper::Request<B>,
        cgi: &CgiContext,
        env: &ProcessEnv,
        slot: Slot,
        verdict: &BodyVerdict,
    ) -> Result<hyper::Response<BoxBody>, WebError> {
        let _slot = slot;
        let deadline = Instant::now() + self.limits.request_timeout;
        let (parts, body) = req.into_parts();
        let content_length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());

        let stdout = BudgetedOutput::new(self.budget.clone(), self.limits.max_wagi_output);
        let mut builder = env.wasi_ctx();
        builder
            .envs(&cgi_variables(&parts, content_length, cgi))
            .stdin(AsyncStdinStream::new(BodyReader::new(body)))
            .stdout(stdout.clone());
        let mut store = Store::new(
            self.pre.module().engine(),
            WagiState {
                wasi: builder.build_p1(),
                limits: sandbox::store_limits(&self.limits),
            },
        );
        sandbox::confine(&mut store, deadline);

        let run = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        let outcome = tokio::time::timeout_at(deadline.into(), run).await;
        drop(store);
        // A body that failed (too large, stalled) decides the answer, whatever
        // the module made of the read error it got.
        if let Some(fault) = verdict.get() {
            return Err(WebError::BadRequest(fault.status(), fault.to_string()));
        }
        let output = stdout.collect();
        match output.fault {
            Some(OutputFault::TooLarge(cap)) => {
                return Err(WebError::BadResponse(format!(
                    "CGI response larger than {cap} bytes"
                )))
            }
            Some(OutputFault::BudgetExhausted) => {
                return Err(WebError::Unavailable(
                    "the server's memory budget for buffered responses is spent; \
                     try again shortly"
                        .into(),
                ))
            }
            None => {}
        }
        match outcome {
            Err(_) => return Err(WebError::Timeout),
            Ok(Ok(())) => {}
            Ok(Err(err)) => match err.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => {}
                Some(I32Exit(code)) => {
                    return Err(WebError::Crashed(format!("exited with status {code}")))
                }
                None => return Err(WebError::from_guest(err)),
            },
        }
        parse_cgi_response(output.bytes, output.reserved)
    }
}

/// The CGI/1.1 meta-variables (RFC 3875) plus WAGI's `X_*` extras.
///
/// `CONTENT_LENGTH` is the request's `Content-Length`; a chunked body has
/// none, so the variable is absent and the module reads stdin to its end.
fn cgi_variables(
    parts: &http::request::Parts,
    content_length: Option<u64>,
    cgi: &CgiContext,
) -> Vec<(String, String)> {
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let server_name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut vars = vec![
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        (
            "SERVER_SOFTWARE".into(),
            concat!("wpaas/", env!("CARGO_PKG_VERSION")).into(),
        ),
        ("SERVER_PROTOCOL".into(), format!("{:?}", parts.version)),
        ("SERVER_NAME".into(), server_name.to_string()),
        ("SERVER_PORT".into(), cgi.local.port().to_string()),
        ("REQUEST_METHOD".into(), parts.method.to_string()),
        ("SCRIPT_NAME".into(), String::new()),
        ("PATH_INFO".into(), path.to_string()),
        ("PATH_TRANSLATED".into(), path.to_string()),
        ("QUERY_STRING".into(), query.to_string()),
        ("CONTENT_TYPE".into(), header(http::header::CONTENT_TYPE)),
        ("REMOTE_ADDR".into(), cgi.remote.ip().to_string()),
        ("REMOTE_HOST".into(), cgi.remote.ip().to_string()),
        ("X_RAW_PATH_INFO".into(), path.to_string()),
        ("X_FULL_URL".into(), format!("http://{host}{}", parts.uri)),
        ("X_MATCHED_ROUTE".into(), "/...".into()),
    ];
    if let Some(length) = content_length {
        vars.push(("CONTENT_LENGTH".into(), length.to_string()));
    }
    for (name, value) in &parts.headers {
        if !passed_as_http_variable(name.as_str()) {
            continue;
        }
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match vars.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            None => vars.push((key, value)),
        }
    }
    vars
}

/// Whether a request header becomes an `HTTP_*` variable.
///
/// * Not `Content-Type`/`Content-Length` (given above) nor `Authorization`
///   (credentials; RFC 3875 4.1.18).
/// * Not a name with `_`: `X_Forwarded_For` and `X-Forwarded-For` would
///   both become `HTTP_X_FORWARDED_FOR`, letting a client forge the
///   entries the router adds. nginx and Apache drop such headers too.
/// * Not `Proxy` ("httpoxy"): as `HTTP_PROXY` it would tell HTTP clients in
///   the module where to send their outbound requests.
fn passed_as_http_variable(name: &str) -> bool {
    !matches!(
        name,
        "content-type" | "content-length" | "authorization" | "proxy"
    ) && !name.contains('_')
}

/// Parses CGI output: header lines, a blank line, then the body. The body
/// keeps `reserved` (the output's share of the buffer budget) until it has
/// been sent or dropped.
fn parse_cgi_response(
    output: Bytes,
    reserved: Option<OwnedSemaphorePermit>,
) -> Result<hyper::Response<BoxBody>, WebError> {
    let (head_len, body_start) = find_header_end(&output).ok_or_else(|| {
        WebError::BadResponse("no blank line after the CGI headers on stdout".into())
    })?;
    let head = std::str::from_utf8(&output[..head_len])
        .map_err(|_| WebError::BadResponse("CGI headers are not UTF-8".into()))?;
    let mut response = hyper::Response::builder();
    let mut status = None;
    let mut has_location = false;
    for line in head.lines().filter(|l| !l.trim().is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| WebError::BadResponse(format!("malformed CGI header line `{line}`")))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("");
            status = Some(
                code.parse::<u16>()
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .ok_or_else(|| WebError::BadResponse(format!("invalid Status `{value}`")))?,
            );
            continue;
        }
        has_location |= name.eq_ignore_ascii_case("location");
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| WebError::BadResponse(format!("invalid header name `{name}`")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| WebError::BadResponse(format!("invalid value for header `{name}`")))?;
        response = response.header(name, value);
    }
    let status = status.unwrap_or(if has_location {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    });
    let body = output.slice(body_start..);
    response
        .status(status)
        .body(
            Full::new(body)
                .map_err(move |never| {
                    // Owning the permit ties it to the body's life.
                    let _held = &reserved;
                    match never {}
                })
                .boxed_unsync(),
        )
        .map_err(|e| WebError::BadResponse(e.to_string()))
}

/// Returns (end of headers, start of body) for `\n\n` or `\r\n\r\n`.
fn find_header_end(output: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    for (i, &b) in output.iter().enumerate() {
        if b == b'\n' {
            let line = &output[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some((line_start, i + 1));
            }
            line_start = i + 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: hyper::Response<BoxBody>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn parses_status_headers_and_body() {
        let out =
            Bytes::from_static(b"Status: 201 Created\r\nContent-Type: text/plain\r\n\r\nhi\n");
        let response = parse_cgi_response(out, None).unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(body_of(response).await, "hi\n");
    }

    #[tokio::test]
    async fn location_without_status_redirects() {
        let response = parse_cgi_response(Bytes::from_static(b"Location: /x\n\n"), None).unwrap();
        assert_eq!(response.status(), 302);
    }

    #[test]
    fn underscored_and_proxy_headers_are_not_variables() {
        let req = http::Request::builder()
            .uri("/x")
            .header("x-forwarded-for", "1.2.3.4, 127.0.0.1")
            .header("x_forwarded_for", "6.6.6.6")
            .header("proxy", "http://evil:8080")
            .header("x-ok", "yes")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let addr = "127.0.0.1:1".parse().unwrap();
        let cgi = CgiContext {
            remote: addr,
            local: addr,
        };
        let vars = cgi_variables(&parts, None, &cgi);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HTTP_X_FORWARDED_FOR"), Some("1.2.3.4, 127.0.0.1"));
        assert_eq!(get("HTTP_PROXY"), None);
        assert_eq!(get("HTTP_X_OK"), Some("yes"));
        assert_eq!(get("CONTENT_LENGTH"), None);
    }

    #[test]
    fn output_without_blank_line_is_rejected() {
        let err = parse_cgi_response(Bytes::from_static(b"hello world"), None).unwrap_err();
        assert!(matches!(err, WebError::BadResponse(_)));
    }
}
