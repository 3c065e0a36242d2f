//! Web processes that are WASI preview-1 core modules, run CGI-style (WAGI):
//! the request arrives as CGI environment variables plus the body on stdin,
//! and the module's stdout is parsed as a CGI response.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Engine, InstancePre, Linker, Module, Store, StoreLimits};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::I32Exit;

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
pub struct WagiModule {
    pre: InstancePre<WagiState>,
    limits: Limits,
}

/// Facts about the request that CGI wants and the HTTP request lacks.
pub struct CgiContext {
    /// The client's address as the router saw it.
    pub remote: SocketAddr,
    /// The address the router accepted the connection on.
    pub local: SocketAddr,
}

impl WagiModule {
    /// Links `module` against WASI preview 1.
    pub fn new(engine: &Engine, module: &Module, limits: Limits) -> Result<Self> {
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
        Ok(Self { pre, limits })
    }

    /// Runs the module once for `req`.
    pub async fn serve<B: super::RequestBody>(
        &self,
        req: hyper::Request<B>,
        cgi: &CgiContext,
        env: &ProcessEnv,
        permit: OwnedSemaphorePermit,
    ) -> Result<hyper::Response<BoxBody>, WebError> {
        let _permit = permit;
        let deadline = Instant::now() + self.limits.request_timeout;
        let (parts, body) = req.into_parts();
        let body = match tokio::time::timeout_at(
            deadline.into(),
            Limited::new(body, self.limits.max_wagi_input).collect(),
        )
        .await
        {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
                return Err(WebError::BadRequest(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body larger than {} bytes",
                        self.limits.max_wagi_input
                    ),
                ))
            }
            Ok(Err(err)) => {
                return Err(WebError::BadRequest(
                    StatusCode::BAD_REQUEST,
                    format!("could not read request body: {err}"),
                ))
            }
            Err(_) => return Err(WebError::Timeout),
        };

        let stdout = MemoryOutputPipe::new(self.limits.max_wagi_output);
        let mut builder = env.wasi_ctx();
        builder
            .envs(&cgi_variables(&parts, body.len(), cgi))
            .stdin(MemoryInputPipe::new(body))
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
        let output = stdout.contents();
        if output.len() >= self.limits.max_wagi_output {
            return Err(WebError::BadResponse(format!(
                "CGI response larger than {} bytes",
                self.limits.max_wagi_output
            )));
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
        parse_cgi_response(output)
    }
}

/// The CGI/1.1 meta-variables (RFC 3875) plus WAGI's `X_*` extras.
fn cgi_variables(
    parts: &http::request::Parts,
    content_length: usize,
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
        ("CONTENT_LENGTH".into(), content_length.to_string()),
        ("REMOTE_ADDR".into(), cgi.remote.ip().to_string()),
        ("REMOTE_HOST".into(), cgi.remote.ip().to_string()),
        ("X_RAW_PATH_INFO".into(), path.to_string()),
        ("X_FULL_URL".into(), format!("http://{host}{}", parts.uri)),
        ("X_MATCHED_ROUTE".into(), "/...".into()),
    ];
    for (name, value) in &parts.headers {
        // RFC 3875 4.1.18: these are already given above, or hold credentials.
        if matches!(
            name.as_str(),
            "content-type" | "content-length" | "authorization"
        ) {
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

/// Parses CGI output: header lines, a blank line, then the body.
fn parse_cgi_response(output: Bytes) -> Result<hyper::Response<BoxBody>, WebError> {
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
                .map_err(|never| match never {})
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
        let response = parse_cgi_response(out).unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(body_of(response).await, "hi\n");
    }

    #[tokio::test]
    async fn location_without_status_redirects() {
        let response = parse_cgi_response(Bytes::from_static(b"Location: /x\n\n")).unwrap();
        assert_eq!(response.status(), 302);
    }

    #[test]
    fn output_without_blank_line_is_rejected() {
        let err = parse_cgi_response(Bytes::from_static(b"hello world")).unwrap_err();
        assert!(matches!(err, WebError::BadResponse(_)));
    }
}
