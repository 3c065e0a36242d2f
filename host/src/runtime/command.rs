//! Long-running and one-off processes: WASI commands (a preview-1 module's
//! `_start`, or a component exporting `wasi:cli/run`) run to completion with
//! the release's config as environment and their output cut into lines.
//!
//! There are no signals in wasm, so stopping a process means dropping it at
//! its next epoch yield (within one tick, 10 ms): the "grace period" of a
//! process that ignores SIGTERM is zero here, and nothing it had not yet
//! written survives.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker as ComponentLinker, ResourceTable};
use wasmtime::{Engine, InstancePre, Linker, Module, Store, StoreLimits};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use super::guest_data::{self, GuestData, HasGuestData, KvView};
use super::limits::Limits;
use super::output::{line_stream, LineSink};
use super::sandbox;
use super::ProcessEnv;

/// How a command run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It returned or called `exit(code)`.
    Code(i32),
    /// It trapped (panic, out-of-bounds, stack overflow, out of fuel…).
    Trap(String),
    /// It was stopped from outside.
    Stopped,
}

impl Exit {
    /// Zero exit code.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }

    /// The exit code a shell would report (traps 134, like an abort).
    pub fn code(&self) -> i32 {
        match self {
            Exit::Code(code) => *code,
            Exit::Trap(_) => 134,
            Exit::Stopped => 143,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with status {code}"),
            Exit::Trap(trap) => write!(f, "crashed: {trap}"),
            Exit::Stopped => write!(f, "stopped"),
        }
    }
}

/// Where a command's stdout and stderr go.
#[derive(Clone)]
pub struct Stdio {
    /// Receives stdout lines.
    pub stdout: Arc<dyn LineSink>,
    /// Receives stderr lines.
    pub stderr: Arc<dyn LineSink>,
}

struct P1State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

impl sandbox::HasLimits for P1State {
    fn limits(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }
}

struct P2State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    data: GuestData,
}

impl HasGuestData for P2State {
    fn guest_view(&mut self) -> KvView<'_> {
        KvView {
            data: &mut self.data,
            table: &mut self.table,
        }
    }
}

impl sandbox::HasLimits for P2State {
    fn limits(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

enum Code {
    Module(InstancePre<P1State>),
    Component(CommandPre<P2State>),
}

/// A linked WASI command, ready to run any number of times.
pub struct WasiCommand {
    code: Code,
    limits: Limits,
}

/// How long a long-running process may run: no deadline in practice, but
/// the epoch callback still makes it yield every tick.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl WasiCommand {
    /// Links a preview-1 module exporting `_start`.
    pub fn from_module(engine: &Engine, module: &Module, limits: Limits) -> Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut P1State| &mut s.wasi)
            .map_err(anyhow::Error::from)?;
        if module.get_export("_start").is_none() {
            anyhow::bail!("not a WASI command: the module exports no `_start`");
        }
        let pre = linker
            .instantiate_pre(module)
            .map_err(anyhow::Error::from)
            .context("the module imports something WASI preview 1 does not provide")?;
        Ok(Self {
            code: Code::Module(pre),
            limits,
        })
    }

    /// Links a component exporting `wasi:cli/run`.
    pub fn from_component(engine: &Engine, component: &Component, limits: Limits) -> Result<Self> {
        let mut linker = ComponentLinker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        guest_data::add_to_linker(&mut linker)?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("the component imports something wpaas does not provide to commands")?;
        let pre = CommandPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("not a WASI command: the component does not export wasi:cli/run")?;
        Ok(Self {
            code: Code::Component(pre),
            limits,
        })
    }

    /// Runs once in a fresh instance until it exits, traps, hits `timeout`
    /// (a trap) or `stop` resolves.
    pub async fn run(
        &self,
        env: &ProcessEnv,
        stdio: &Stdio,
        timeout: Option<Duration>,
        stop: impl Future<Output = ()>,
    ) -> Exit {
        let deadline = Instant::now() + timeout.unwrap_or(FOREVER);
        let mut builder = env.wasi_ctx();
        builder
            .stdout(line_stream(stdio.stdout.clone()))
            .stderr(line_stream(stdio.stderr.clone()));
        let limits = sandbox::store_limits(&self.limits);
        let outcome = match &self.code {
            Code::Module(pre) => {
                let mut store = Store::new(
                    pre.module().engine(),
                    P1State {
                        wasi: builder.build_p1(),
                        limits,
                    },
                );
                sandbox::confine(&mut store, deadline);
                let run = async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    start.call_async(&mut store, ()).await
                };
                tokio::select! {
                    result = run => Some(result.map(|()| 0)),
                    () = stop => None,
                }
            }
            Code::Component(pre) => {
                let mut store = Store::new(
                    pre.engine(),
                    P2State {
                        wasi: builder.build(),
                        table: ResourceTable::new(),
                        limits,
                        data: GuestData::new(env),
                    },
                );
                sandbox::confine(&mut store, deadline);
                let run = async {
                    let command = pre.instantiate_async(&mut store).await?;
                    let result = command.wasi_cli_run().call_run(&mut store).await?;
                    wasmtime::Result::Ok(if result.is_ok() { 0 } else { 1 })
                };
                tokio::select! {
                    result = run => Some(result),
                    () = stop => None,
                }
            }
        };
        match outcome {
            None => Exit::Stopped,
            Some(Ok(code)) => Exit::Code(code),
            Some(Err(err)) => match err.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => Exit::Code(*code),
                None => Exit::Trap(match super::WebError::from_guest(err) {
                    super::WebError::Timeout => "timed out".into(),
                    super::WebError::Crashed(trap) => trap,
                    other => other.to_string(),
                }),
            },
        }
    }
}
