//! Web processes that are components exporting `wasi:http/incoming-handler`
//! (the `wasi:http/proxy` world — the contract of `wasmtime serve`, Spin and
//! wasmCloud). Each request gets a fresh instance from a pre-linked
//! [`ProxyPre`]; bodies stream in both directions.

use std::time::Instant;

use anyhow::{Context, Result};
use http_body_util::BodyExt;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::admission::Slot;
use super::body::BodyVerdict;
use super::error::WebError;
use super::failure_log;
use super::guest_data::{self, GuestData, HasGuestData, KvView};
use super::limits::Limits;
use super::outbound::OutboundHooks;
use super::sandbox;
use super::{BoxBody, ProcessEnv};

/// Per-request store state.
struct ComponentState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Decides where outgoing requests may go.
    hooks: OutboundHooks,
    table: ResourceTable,
    limits: StoreLimits,
    data: GuestData,
}

impl HasGuestData for ComponentState {
    fn guest_view(&mut self) -> KvView<'_> {
        KvView {
            data: &mut self.data,
            table: &mut self.table,
        }
    }
}

impl sandbox::HasLimits for ComponentState {
    fn limits(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// A linked, ready-to-instantiate HTTP component.
pub(crate) struct HttpComponent {
    pre: ProxyPre<ComponentState>,
    limits: Limits,
}

impl HttpComponent {
    /// Links `component` against WASI (the full CLI world, so components
    /// built by Rust's wasm32-wasip2 std work), wasi:http and the data
    /// interfaces (wasi:config).
    pub fn new(engine: &Engine, component: &Component, limits: Limits) -> Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        guest_data::add_to_linker(&mut linker)?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("the component imports something wpaas does not provide")?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export wasi:http/incoming-handler")?;
        Ok(Self { pre, limits })
    }

    /// Runs one request in a fresh instance seeing `env`. `slot` is held
    /// until the instance is gone, i.e. after the response body has been
    /// written. The request body is guarded and reports faults to
    /// `verdict`.
    pub async fn serve<B: super::RequestBody>(
        &self,
        req: hyper::Request<B>,
        env: &ProcessEnv,
        slot: Slot,
        verdict: &BodyVerdict,
    ) -> Result<hyper::Response<BoxBody>, WebError> {
        let deadline = Instant::now() + self.limits.request_timeout;
        let request_id = failure_log::request_id(req.headers());
        // A guest creating resources in a loop (fields, streams, pollables)
        // gets a trap at the cap instead of growing host memory.
        let mut table = ResourceTable::new();
        table.set_max_capacity(self.limits.max_resources);
        let mut store = Store::new(
            self.pre.engine(),
            ComponentState {
                wasi: env.wasi_ctx().build(),
                http: WasiHttpCtx::new(),
                hooks: OutboundHooks::new(
                    self.limits.allow_private_outbound,
                    self.limits.max_outbound,
                ),
                table,
                limits: sandbox::store_limits(&self.limits),
                data: GuestData::new(env),
            },
        );
        sandbox::confine(&mut store, deadline);

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (req, out) = {
            let mut http = store.data_mut().http();
            let req = http
                .new_incoming_request(Scheme::Http, req)
                .map_err(|e| WebError::BadRequest(http::StatusCode::BAD_REQUEST, e.to_string()))?;
            let out = http
                .new_response_outparam(sender)
                .map_err(|e| WebError::Unavailable(e.to_string()))?;
            (req, out)
        };

        // The guest runs in its own task: after it sets the response head it
        // keeps running to write the body while hyper streams it out.
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let _slot = slot;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            match tokio::time::timeout_at(deadline.into(), run).await {
                Ok(result) => result.map_err(WebError::from_guest),
                Err(_) => Err(WebError::Timeout),
            }
        });

        let answer = receiver.await;
        // A body that failed before the guest answered (too large, client
        // stalled) decides the answer: the guest only saw a stream error.
        // Once the head is out, a later fault can only cut the response.
        if let Some(fault) = verdict.get() {
            return Err(WebError::BadRequest(fault.status(), fault.to_string()));
        }
        match answer {
            Ok(Ok(response)) => {
                // The guest goes on writing the body; if it fails there,
                // the visitor gets a cut response (H18) and the app's log
                // why.
                if let Some(sink) = failure_log::sink(env) {
                    let limit = self.limits.request_timeout;
                    tokio::spawn(async move {
                        if let Ok(Err(err)) = task.await {
                            failure_log::tell_late(&*sink, &request_id, &err, limit);
                        }
                    });
                }
                Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
            }
            Ok(Err(code)) => Err(WebError::BadResponse(format!("{code:?}"))),
            // The outparam was dropped unset: the task ended; ask it why.
            Err(_) => match task.await {
                Ok(Ok(())) => Err(WebError::NoResponse),
                Ok(Err(err)) => Err(err),
                Err(join) => Err(WebError::Crashed(join.to_string())),
            },
        }
    }
}
