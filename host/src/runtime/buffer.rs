//! The one server-wide budget for bytes the host must hold for guests.
//!
//! Bodies stream, so almost nothing is buffered; what must be (a WAGI
//! module's stdout, parsed as a CGI response only once the module is done)
//! is taken from one [`Budget`], a semaphore of bytes. An output reserves
//! bytes as it grows and gives them back when its response has been sent;
//! when the budget is spent the guest's write fails and the client gets a
//! 503 that says so, instead of the server growing without bound.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Bytes reserved at a time, so a guest writing small lines does not touch
/// the shared semaphore for each.
const RESERVE_STEP: usize = 64 << 10;

/// Bytes the host may hold buffered at once, over all requests.
#[derive(Clone)]
pub(crate) struct Budget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl Budget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Bytes reserved now.
    pub(crate) fn in_use(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    /// Reserves `n` more bytes, or `None` when the budget cannot spare them.
    fn reserve(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(n).ok()?;
        self.bytes.clone().try_acquire_many_owned(n).ok()
    }
}

/// Why buffered output stopped growing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFault {
    /// The output reached its own cap.
    TooLarge(usize),
    /// The server-wide budget was spent.
    BudgetExhausted,
}

struct State {
    buffer: BytesMut,
    /// Bytes this output holds of the budget (covers `buffer`'s capacity).
    reserved: Option<OwnedSemaphorePermit>,
    fault: Option<OutputFault>,
}

/// A guest's stdout collected in memory, at most `capacity` bytes, every
/// byte of it reserved from a [`Budget`].
#[derive(Clone)]
pub(crate) struct BudgetedOutput {
    budget: Budget,
    capacity: usize,
    state: Arc<Mutex<State>>,
}

/// Output taken out of a [`BudgetedOutput`]: the bytes, and the budget they
/// hold until this is dropped.
pub(crate) struct Collected {
    /// What the guest wrote.
    pub bytes: Bytes,
    /// Keeps the bytes counted against the budget.
    pub reserved: Option<OwnedSemaphorePermit>,
    /// Why writing stopped early, if it did.
    pub fault: Option<OutputFault>,
}

impl BudgetedOutput {
    /// An empty output of at most `capacity` bytes drawing on `budget`.
    pub fn new(budget: Budget, capacity: usize) -> Self {
        Self {
            budget,
            capacity,
            state: Arc::new(Mutex::new(State {
                buffer: BytesMut::new(),
                reserved: None,
                fault: None,
            })),
        }
    }

    /// Takes what was written (the guest must be gone).
    pub fn collect(&self) -> Collected {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Collected {
            bytes: std::mem::take(&mut state.buffer).freeze(),
            reserved: state.reserved.take(),
            fault: state.fault,
        }
    }

    /// Appends `data`, reserving budget for the buffer's growth first.
    fn append(&self, data: &[u8]) -> Result<(), OutputFault> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fault) = state.fault {
            return Err(fault);
        }
        let needed = state.buffer.len() + data.len();
        if needed > self.capacity {
            state.fault = Some(OutputFault::TooLarge(self.capacity));
            return Err(OutputFault::TooLarge(self.capacity));
        }
        let held = state.reserved.as_ref().map_or(0, |p| p.num_permits());
        if needed > held {
            // Grow geometrically like a Vec would, in whole steps, never
            // beyond the cap; the buffer gets exactly what was reserved.
            let target = needed
                .max(held * 2)
                .next_multiple_of(RESERVE_STEP)
                .min(self.capacity);
            match self.budget.reserve(target - held) {
                Some(more) => match &mut state.reserved {
                    Some(permit) => permit.merge(more),
                    None => state.reserved = Some(more),
                },
                None => {
                    state.fault = Some(OutputFault::BudgetExhausted);
                    return Err(OutputFault::BudgetExhausted);
                }
            }
            let len = state.buffer.len();
            state.buffer.reserve(target - len);
        }
        state.buffer.extend_from_slice(data);
        Ok(())
    }
}

fn stream_error(fault: OutputFault) -> StreamError {
    StreamError::Trap(wasmtime::format_err!(match fault {
        OutputFault::TooLarge(cap) => format!("output larger than {cap} bytes"),
        OutputFault::BudgetExhausted => "the server's output buffer budget is spent".into(),
    }))
}

#[wasmtime_wasi::async_trait]
impl OutputStream for BudgetedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes).map_err(stream_error)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.fault {
            Some(fault) => Err(stream_error(fault)),
            // Never report 0 (that would mean "wait"); a write past the cap
            // is refused by `write` instead.
            None => Ok((self.capacity - state.buffer.len()).max(1)),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BudgetedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for BudgetedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.append(buf)
                .map(|()| buf.len())
                .map_err(|fault| std::io::Error::other(format!("{fault:?}"))),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for BudgetedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BudgetedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_holds_budget_until_collected_and_dropped() {
        let budget = Budget::new(1 << 20);
        let out = BudgetedOutput::new(budget.clone(), 512 << 10);
        out.append(&[1u8; 100]).unwrap();
        assert_eq!(budget.in_use(), RESERVE_STEP);
        out.append(&vec![2u8; 200_000]).unwrap();
        assert!(budget.in_use() >= 200_100, "{}", budget.in_use());
        let collected = out.collect();
        assert_eq!(collected.bytes.len(), 200_100);
        assert!(budget.in_use() > 0);
        drop(collected);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_spent_budget_and_the_cap_refuse_writes() {
        let budget = Budget::new(RESERVE_STEP);
        let first = BudgetedOutput::new(budget.clone(), 1 << 20);
        first.append(&[0u8; 10]).unwrap();
        let second = BudgetedOutput::new(budget.clone(), 1 << 20);
        assert_eq!(second.append(&[0u8; 10]), Err(OutputFault::BudgetExhausted));
        assert_eq!(
            first.append(&vec![0u8; 2 << 20]),
            Err(OutputFault::TooLarge(1 << 20))
        );
        assert_eq!(first.collect().fault, Some(OutputFault::TooLarge(1 << 20)));
    }
}
