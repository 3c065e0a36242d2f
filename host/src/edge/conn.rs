//! One connection's bookkeeping: what it is doing (serving a request,
//! quiet between requests, receiving a request head, stuck writing to a
//! client that does not read), and the watchdog that closes it when one of
//! those lasts too long.
//!
//! hyper's own HTTP/1 header timeout also runs between keep-alive requests
//! (so it would cap the idle time at the header timeout) and does not cover
//! the TLS handshake, the HTTP/2 preface or a client that never reads; this
//! watchdog sees the socket below all of them.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::ip_slots::IpSlot;
use super::Limits;

/// "Not set" for the millisecond fields of [`Activity`].
const NONE: u64 = u64::MAX;

/// What a connection is doing, shared by its socket, its requests and its
/// watchdog. Times are milliseconds since `accepted`.
#[derive(Debug)]
pub(crate) struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    started: AtomicU64,
    quiet_since: AtomicU64,
    head_since: AtomicU64,
    write_blocked_since: AtomicU64,
    h2: AtomicBool,
    evict: AtomicBool,
    wake: Notify,
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A request head (or the TLS handshake before the first) took longer
    /// than the header timeout: close at once.
    HeaderTimeout,
    /// A response has waited longer than the idle timeout for a client that
    /// reads nothing: close at once.
    WriteStalled,
    /// Nothing happened for the idle timeout: close politely.
    Idle,
    /// The listener is full and this was its longest-quiet connection:
    /// close at once.
    Evicted,
}

impl Verdict {
    /// Whether to drop the connection at once rather than ask hyper to
    /// close it. hyper closes only a connection between two requests at
    /// once; one still receiving a request head (which an evicted one may
    /// be) it would keep until the head completes.
    pub(crate) fn abrupt(self) -> bool {
        !matches!(self, Verdict::Idle)
    }
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            quiet_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            write_blocked_since: AtomicU64::new(NONE),
            h2: AtomicBool::new(false),
            evict: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// HTTP/2 (from the preface or ALPN): bytes between requests are pings
    /// and window updates, not the start of a request head.
    pub(crate) fn set_h2(&self) {
        self.h2.store(true, Ordering::Relaxed);
    }

    /// A request's head has arrived and its service runs; the returned
    /// guard ends it when dropped (with the response body).
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        self.head_since.store(NONE, Ordering::SeqCst);
        self.wake.notify_one();
        InFlight(self.clone())
    }

    fn read_some(&self, first: &[u8], first_read: bool) {
        if first_read && is_h2_preface_start(first) {
            self.set_h2();
        }
        let quiet = self.in_flight.load(Ordering::SeqCst) == 0;
        if quiet
            && self.started.load(Ordering::SeqCst) > 0
            && !self.h2.load(Ordering::Relaxed)
            && self.head_since.load(Ordering::SeqCst) == NONE
        {
            self.head_since.store(self.now(), Ordering::SeqCst);
            self.wake.notify_one();
        }
    }

    fn write_blocked(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) == NONE {
            self.write_blocked_since.store(self.now(), Ordering::SeqCst);
            self.wake.notify_one();
        }
    }

    fn write_progressed(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) != NONE {
            self.write_blocked_since.store(NONE, Ordering::SeqCst);
        }
    }

    /// Since when it has been quiet (no request in flight, no write
    /// waiting), or `None` while busy or already evicted (it closes within
    /// microseconds, but is counted until then).
    pub(crate) fn quiet_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0
            || self.write_blocked_since.load(Ordering::SeqCst) != NONE
            || self.evict.load(Ordering::SeqCst)
        {
            return None;
        }
        let ms = self.quiet_since.load(Ordering::SeqCst);
        Some(self.accepted + Duration::from_millis(ms))
    }

    /// Asks the watchdog to close this connection now.
    pub(crate) fn evict(&self) {
        self.evict.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// The next moment the connection is out of time, and why; `None`
    /// while a request is being served and the client reads.
    fn deadline(&self, limits: &Limits) -> Option<(u64, Verdict)> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
        let blocked = self.write_blocked_since.load(Ordering::SeqCst);
        if blocked != NONE {
            return Some((blocked + ms(limits.idle_timeout), Verdict::WriteStalled));
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        if self.started.load(Ordering::SeqCst) == 0 {
            return Some((ms(limits.header_timeout), Verdict::HeaderTimeout));
        }
        let head = self.head_since.load(Ordering::SeqCst);
        if head != NONE {
            return Some((head + ms(limits.header_timeout), Verdict::HeaderTimeout));
        }
        let quiet = self.quiet_since.load(Ordering::SeqCst);
        Some((quiet + ms(limits.idle_timeout), Verdict::Idle))
    }
}

/// Whether `bytes`, the first a client sent, begin the HTTP/2 preface.
fn is_h2_preface_start(bytes: &[u8]) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let n = bytes.len().min(PREFACE.len());
    n > 0 && bytes[..n] == PREFACE[..n]
}

/// Resolves when the connection has run out of time (or was evicted).
pub(crate) async fn watchdog(activity: Arc<Activity>, limits: Limits) -> Verdict {
    loop {
        if activity.evict.load(Ordering::SeqCst) {
            return Verdict::Evicted;
        }
        match activity.deadline(&limits) {
            None => activity.wake.notified().await,
            Some((at, verdict)) => {
                let now = activity.now();
                if now >= at {
                    return verdict;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(at - now)) => {}
                    () = activity.wake.notified() => {}
                }
            }
        }
    }
}

/// A request being served; dropped with its response body.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            activity.quiet_since.store(activity.now(), Ordering::SeqCst);
            activity.wake.notify_one();
        }
    }
}

/// A response body that keeps its request in flight until hyper has sent
/// it (or dropped it with the connection).
pub(crate) struct GuardedBody<B> {
    inner: B,
    _request: InFlight,
}

impl<B> GuardedBody<B> {
    pub(crate) fn new(inner: B, request: InFlight) -> Self {
        Self {
            inner,
            _request: request,
        }
    }
}

impl<B> http_body::Body for GuardedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The client's socket as the connection's activity sees it. It also holds
/// the connection's slots (the listener's and its address's), so they are
/// given back when the socket closes, even after an upgrade.
pub(crate) struct WatchedIo<S> {
    inner: S,
    activity: Arc<Activity>,
    first_read: bool,
    _slot: OwnedSemaphorePermit,
    _ip: Option<IpSlot>,
}

impl<S> WatchedIo<S> {
    pub(crate) fn new(
        inner: S,
        activity: Arc<Activity>,
        slot: OwnedSemaphorePermit,
        ip: Option<IpSlot>,
    ) -> Self {
        Self {
            inner,
            activity,
            first_read: true,
            _slot: slot,
            _ip: ip,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let got = &buf.filled()[before..];
            if !got.is_empty() {
                this.activity.read_some(got, this.first_read);
                this.first_read = false;
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S> WatchedIo<S> {
    fn note_write(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(_) => self.activity.write_progressed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        }
    }

    #[test]
    fn deadlines_follow_what_the_connection_does() {
        let activity = Arc::new(Activity::new());
        // Fresh: the first request's head is due within the header timeout.
        assert_eq!(
            activity.deadline(&limits()),
            Some((10_000, Verdict::HeaderTimeout))
        );
        // Serving: no deadline.
        let request = activity.request_started();
        assert_eq!(activity.deadline(&limits()), None);
        assert!(activity.quiet_since().is_none());
        // A client that stops reading the response.
        activity.write_blocked();
        assert_eq!(
            activity.deadline(&limits()).map(|d| d.1),
            Some(Verdict::WriteStalled)
        );
        activity.write_progressed();
        drop(request);
        // Between requests: the idle timeout, until bytes of a head arrive.
        assert_eq!(
            activity.deadline(&limits()).map(|d| d.1),
            Some(Verdict::Idle)
        );
        assert!(activity.quiet_since().is_some());
        activity.read_some(b"GET / HT", false);
        assert!(
            activity.quiet_since().is_some(),
            "a head in progress is quiet"
        );
        assert_eq!(
            activity.deadline(&limits()).map(|d| d.1),
            Some(Verdict::HeaderTimeout)
        );
        let again = activity.request_started();
        drop(again);
        assert_eq!(
            activity.deadline(&limits()).map(|d| d.1),
            Some(Verdict::Idle)
        );
    }

    #[test]
    fn http2_pings_between_requests_are_not_a_request_head() {
        let activity = Arc::new(Activity::new());
        activity.read_some(b"PRI * HTTP/2.0\r\n", true);
        drop(activity.request_started());
        activity.read_some(b"\x00\x00\x08\x06", false);
        assert_eq!(
            activity.deadline(&limits()).map(|d| d.1),
            Some(Verdict::Idle)
        );
        activity.evict();
        assert!(activity.quiet_since().is_none(), "evicted once only");
        assert!(is_h2_preface_start(b"PRI"));
        assert!(!is_h2_preface_start(b"GET / HTTP/1.1"));
        assert!(!is_h2_preface_start(b""));
    }
}
