//! Receiving a deploy upload without holding an async worker or memory.
//!
//! The request body is handed, a few chunks at a time through a bounded
//! channel, to a blocking thread that unpacks the tar.gz as it arrives
//! (into `WPAAS_HOME/tmp/uploads/<random>`). Three caps apply while it
//! streams: the bytes sent (`wpaas server --max-upload`), the bytes
//! unpacked ([`MAX_UNPACKED`]) and the entries (`--max-upload-entries`).
//! A refused upload leaves nothing behind and changes nothing; the rest of
//! its body is read and thrown away (up to the byte cap), so that the
//! client, still sending, gets the answer rather than a reset connection.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use wpaas_builder::archive::{self, ArchiveError, UnpackLimits};

use super::error::PlatformError;
use super::platform::{human_size, Platform};

/// Largest unpacked source.
pub const MAX_UNPACKED: u64 = 1 << 30;

/// Body chunks in flight between the connection and the unpacking thread.
const CHUNKS: usize = 8;

/// An unpacked upload.
pub struct Upload {
    dir: PathBuf,
}

impl Upload {
    /// The unpacked source.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Removes what is left of it (nothing, once a build moved it away).
    pub async fn remove(self) {
        let dir = self.dir;
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }
}

/// Unpacks the body of a deploy request as it arrives (hyper's or
/// axum's body, or any other).
pub async fn receive<B>(platform: &Platform, mut body: B) -> Result<Upload, PlatformError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let limit = platform.max_upload();
    let limits = UnpackLimits {
        bytes: MAX_UNPACKED,
        entries: platform.max_upload_entries(),
    };
    let name =
        super::token::random_hex(8).map_err(|e| PlatformError::internal(anyhow::anyhow!("{e}")))?;
    let dir = platform.store().home().uploads().join(name);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS);
    let dest = dir.clone();
    let unpacking = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            chunk: Bytes::new(),
        };
        archive::unpack_limited(reader, &dest, limits)
    });

    let too_big = || {
        PlatformError::too_large(format!(
                "the upload is larger than this server's limit of {} (wpaas server --max-upload); leave build output and data out with .wpaasignore",
                human_size(limit)
            ),
        )
    };
    let mut sent = 0u64;
    let mut failure = None;
    // Set once the unpacker stopped reading (it refused the upload): the
    // rest of the body is only counted.
    let mut refused = false;
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Err(err) => {
                failure = Some(PlatformError::malformed(format!(
                    "could not read upload: {err}"
                )));
                break;
            }
        };
        sent += data.len() as u64;
        if sent > limit {
            if !refused {
                failure = Some(too_big());
            }
            break;
        }
        if !refused && tx.send(Ok(data)).await.is_err() {
            refused = true;
        }
    }
    if failure.is_some() {
        // The unpacker sees a broken stream and removes what it wrote.
        let _ = tx.send(Err(io::Error::other("upload stopped"))).await;
    }
    drop(tx);
    let unpacked = unpacking
        .await
        .map_err(|e| PlatformError::internal(anyhow::anyhow!("{e}")))?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    match unpacked {
        Ok(_) => Ok(Upload { dir }),
        Err(err @ ArchiveError::TooManyEntries { .. }) => Err(PlatformError::too_large(format!(
            "bad upload: {err} (this server's limit: wpaas server --max-upload-entries)"
        ))),
        Err(err @ ArchiveError::TooLarge { .. }) => {
            Err(PlatformError::too_large(format!("bad upload: {err}")))
        }
        Err(err) => Err(PlatformError::invalid(format!(
            "bad upload: {:#}",
            anyhow::Error::new(err)
        ))),
    }
}

/// The body chunks, read on the unpacking thread.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(err)) => return Err(err),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}
