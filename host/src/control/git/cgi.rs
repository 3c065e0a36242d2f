//! The CGI plumbing between a push and `git http-backend`: the request
//! body into its stdin (stopped past the upload limit), its response head
//! and body back out, and, for a push stopped for its size, the reason on
//! git's error side band.

use std::path::Path;

use anyhow::{bail, Result};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};

use super::super::platform::human_size;
use crate::runtime::BoxBody;

/// The most header bytes accepted from http-backend.
const MAX_CGI_HEADER: usize = 64 << 10;

/// Copies the request body into http-backend's stdin, then closes it.
/// Past `limit` bytes it stops: `Err((bytes received, stdin))` — stdin is
/// handed back open, so that git is stopped before it sees the pack end
/// early (and tells the pusher about that instead).
pub(super) async fn copy_body(
    mut body: Incoming,
    mut stdin: ChildStdin,
    limit: Option<u64>,
) -> Result<(), (u64, ChildStdin)> {
    let mut sent = 0u64;
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Err(err) => {
                tracing::warn!("git push body broke off: {err}");
                return Ok(());
            }
        };
        sent += data.len() as u64;
        if limit.is_some_and(|limit| sent > limit) {
            return Err((sent, stdin));
        }
        if stdin.write_all(&data).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Waits until git is over; whether the push was stopped for its size.
pub(super) async fn was_stopped(mut outcome: tokio::sync::watch::Receiver<Option<bool>>) -> bool {
    outcome
        .wait_for(Option::is_some)
        .await
        .is_ok_and(|verdict| *verdict == Some(true))
}

/// Removes what receive-pack kept of a push it was stopped in
/// (`objects/tmp_objdir-incoming-*`).
pub(super) async fn remove_quarantine(objects: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(objects).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("tmp_objdir-incoming-")
        {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

pub(super) fn too_big_message(limit: u64) -> String {
    format!(
        "wpaas: this push is larger than the server's limit of {} (wpaas server --max-upload); nothing was changed",
        human_size(limit)
    )
}

/// A pkt-line on side band 3 (fatal error), which git prints as
/// `remote: MESSAGE` before it gives up on the push.
pub(super) fn fatal_sideband(message: &str) -> Bytes {
    let payload = format!("\x03{message}\n");
    Bytes::from(format!("{:04x}{payload}", payload.len() + 4))
}

/// Reads CGI header lines up to the blank line; returns them and the body
/// bytes read past it.
pub(super) async fn read_cgi_head(stdout: &mut ChildStdout) -> Result<(String, Bytes)> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let end = [&b"\r\n\r\n"[..], b"\n\n"]
            .iter()
            .filter_map(|sep| {
                buf.windows(sep.len())
                    .position(|w| w == *sep)
                    .map(|i| (i, sep.len()))
            })
            .min();
        if let Some((i, len)) = end {
            let head = String::from_utf8_lossy(&buf[..i]).replace('\r', "");
            let rest = buf.split_off(i + len).freeze();
            return Ok((head, rest));
        }
        if buf.len() > MAX_CGI_HEADER {
            bail!("git http-backend wrote no end of headers");
        }
        if stdout.read_buf(&mut buf).await? == 0 {
            bail!("git http-backend ended without a response");
        }
    }
}

/// The response body: `first`, then the rest of stdout as it comes; then,
/// if the push was stopped for its size, the reason for git to show.
pub(super) fn stream_rest(
    first: Bytes,
    stdout: ChildStdout,
    refusal: Option<(tokio::sync::watch::Receiver<Option<bool>>, u64)>,
) -> BoxBody {
    let head = futures::stream::iter((!first.is_empty()).then_some(first));
    let tail = futures::stream::unfold(stdout, |mut stdout| async move {
        let mut buf = BytesMut::with_capacity(64 << 10);
        match stdout.read_buf(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some((buf.freeze(), stdout)),
        }
    });
    // After stdout ends (git is over), wait for the verdict, so that the
    // pusher hears of the push only once what it left is gone.
    let reason = futures::StreamExt::filter_map(
        futures::stream::iter(refusal),
        |(outcome, limit)| async move {
            was_stopped(outcome)
                .await
                .then(|| fatal_sideband(&too_big_message(limit)))
        },
    );
    crate::respond::stream_body(futures::StreamExt::chain(
        futures::StreamExt::chain(head, tail),
        reason,
    ))
}
