//! The reader an upload is unpacked through: it decompresses, counts the
//! bytes and stops at the size limit, remembering why reading stopped.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use flate2::read::GzDecoder;

/// Shared between the decoding reader and [`unpack`](super::unpack): why reading stopped.
#[derive(Default)]
pub(super) struct ReadState {
    pub(super) bytes: Cell<u64>,
    pub(super) gzip_failed: Cell<bool>,
    pub(super) too_large: Cell<bool>,
}

/// Decompresses, counts, and enforces the size limit while streaming.
pub(super) struct Limited<R: BufRead> {
    pub(super) inner: GzDecoder<R>,
    pub(super) limit: u64,
    pub(super) state: Rc<ReadState>,
}

impl<R: BufRead> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| {
            self.state.gzip_failed.set(true);
        })?;
        let total = self.state.bytes.get() + n as u64;
        self.state.bytes.set(total);
        if total > self.limit {
            self.state.too_large.set(true);
            return Err(io::Error::other("size limit exceeded"));
        }
        Ok(n)
    }
}
