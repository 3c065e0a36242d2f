//! Request bodies on their way to a guest: counted against the largest body
//! allowed, and timed while the guest waits for the client.
//!
//! A body is never collected: components read it as a `wasi:http` stream and
//! WAGI modules as stdin ([`BodyReader`]), a chunk at a time. [`Guarded`]
//! fails the stream when the client sends more than `max_request_body` or
//! stops sending for `body_timeout`, and records why in a [`BodyVerdict`],
//! so the host can answer 413 or 408 whatever the guest made of the error.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

/// Why a request body stopped short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyFault {
    /// The client sent more than the limit.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// The client stopped sending for longer than the body-read timeout.
    #[error("the client sent no request body data for {0:?}")]
    Stalled(Duration),
    /// The connection failed (the client went away, bad chunked framing).
    #[error("could not read the request body: {0}")]
    Broken(String),
}

impl BodyFault {
    /// The status the client gets, if it is still there to get one.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BodyFault::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyFault::Stalled(_) => http::StatusCode::REQUEST_TIMEOUT,
            BodyFault::Broken(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl From<BodyFault> for wasmtime_wasi_http::Error {
    fn from(fault: BodyFault) -> Self {
        match fault {
            BodyFault::TooLarge(limit) => Self::HttpRequestBodySize(Some(limit)),
            BodyFault::Stalled(_) => Self::ConnectionReadTimeout,
            BodyFault::Broken(_) => Self::ConnectionTerminated,
        }
    }
}

/// Where a [`Guarded`] body records its fault, shared with the request's
/// handler.
pub(crate) type BodyVerdict = Arc<OnceLock<BodyFault>>;

/// A request body with a size limit and an idle timeout.
pub(crate) struct Guarded<B> {
    inner: B,
    received: u64,
    limit: u64,
    idle: Duration,
    /// Armed when the body last had nothing to give; disarmed by data. Only
    /// time spent waiting for the client counts, not time the guest spends
    /// elsewhere before asking for more.
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
    verdict: BodyVerdict,
    done: bool,
}

impl<B> Guarded<B> {
    /// Wraps `inner`: at most `limit` bytes, at most `idle` between chunks.
    pub fn new(inner: B, limit: u64, idle: Duration) -> (Self, BodyVerdict) {
        let verdict = BodyVerdict::default();
        let body = Self {
            inner,
            received: 0,
            limit,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            armed: false,
            verdict: verdict.clone(),
            done: false,
        };
        (body, verdict)
    }

    fn fail(&mut self, fault: BodyFault) -> Poll<Option<Result<Frame<Bytes>, BodyFault>>> {
        self.done = true;
        let _ = self.verdict.set(fault.clone());
        Poll::Ready(Some(Err(fault)))
    }
}

impl<B> Body for Guarded<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = BodyFault;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFault>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.armed = false;
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    if self.received > self.limit {
                        let limit = self.limit;
                        return self.fail(BodyFault::TooLarge(limit));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => self.fail(BodyFault::Broken(err.to_string())),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !self.armed {
                    self.armed = true;
                    let at = tokio::time::Instant::now() + self.idle;
                    self.timer.as_mut().reset(at);
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let idle = self.idle;
                        self.fail(BodyFault::Stalled(idle))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body as an [`AsyncRead`], for a WAGI module's stdin: each
/// chunk is handed on as it arrives, trailers are ignored.
pub(crate) struct BodyReader<B> {
    // Only ever used through `&mut`; the mutex makes the reader `Sync`, as
    // wasmtime-wasi's stdin wants, without requiring it of the body.
    body: Mutex<B>,
    pending: Bytes,
}

impl<B> BodyReader<B> {
    /// Reads `body`.
    pub fn new(body: B) -> Self {
        Self {
            body: Mutex::new(body),
            pending: Bytes::new(),
        }
    }
}

impl<B> AsyncRead for BodyReader<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            let body = this.body.get_mut().unwrap_or_else(|e| e.into_inner());
            match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.pending = data;
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    return Poll::Ready(Err(std::io::Error::other(err)));
                }
                // End of body: a read of nothing.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_body_over_the_limit_fails_and_says_so() {
        let (body, verdict) = Guarded::new(
            Full::new(Bytes::from(vec![0u8; 100])),
            99,
            Duration::from_secs(5),
        );
        let err = body.collect().await.unwrap_err();
        assert_eq!(err, BodyFault::TooLarge(99));
        assert_eq!(verdict.get().unwrap().status(), 413);
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_a_reader_sees_every_byte_before() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = StreamBody::new(tokio_stream_from(rx));
        let (body, verdict) = Guarded::new(stream, 1 << 20, Duration::from_millis(50));
        tx.send(Ok(Frame::data(Bytes::from_static(b"hello"))))
            .await
            .unwrap();
        let mut reader = BodyReader::new(body);
        let mut got = [0u8; 5];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        // The sender stays open and silent.
        let err = reader.read(&mut [0u8; 1]).await.unwrap_err();
        assert!(err.to_string().contains("no request body data"), "{err}");
        assert_eq!(verdict.get().unwrap().status(), 408);
        drop(tx);
    }

    fn tokio_stream_from<T>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Unpin {
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
