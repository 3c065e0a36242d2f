//! `GET /apps/APP/logs`: an app's log lines, then (with `tail`) new ones
//! as they come.

use axum::extract::State;
use bytes::Bytes;
use futures::StreamExt;
use wpaas_api::logs::LogQuery;

use super::extract::{Params, Segments};
use super::{reply, ApiResult, Shared};
use crate::logs::{lag_line, Filter, LogLine};
use crate::respond;

/// The last `n` lines passing the filters, one per line (text, or JSON
/// objects with `format=json`); with `tail`, then every new line as it
/// comes, until the client hangs up.
pub async fn logs(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Params(query): Params<LogQuery>,
) -> ApiResult {
    platform.store().app(&app)?;
    let json = query.json();
    // `format=sse`: Server-Sent Events (the dashboard's EventSource).
    let sse = query.format.as_deref() == Some("sse");
    let filter = Filter {
        process: query.ps.filter(|ps| !ps.is_empty()),
        source: query.source.filter(|source| !source.is_empty()),
    };
    let render = move |line: &LogLine| -> Bytes {
        let text = if json {
            line.to_json().to_string()
        } else {
            line.to_string()
        };
        if sse {
            return Bytes::from(format!("data: {}\n\n", text.replace(['\r', '\n'], " ")));
        }
        Bytes::from(text + "\n")
    };
    let (kept, live) = platform.logs().read(&app, query.n, &filter, query.tail);
    let first: Vec<u8> = kept.iter().flat_map(|l| render(l).to_vec()).collect();
    let first = futures::stream::iter([Bytes::from(first)]);
    let follow = futures::stream::unfold(live, move |live| {
        let filter = filter.clone();
        async move {
            let mut live = live?;
            loop {
                use tokio::sync::broadcast::error::RecvError;
                match live.recv().await {
                    Ok(line) if filter.matches(&line) => return Some((render(&line), Some(live))),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        return Some((render(&lag_line(missed)), Some(live)))
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let content_type = match (sse, json) {
        (true, _) => "text/event-stream",
        (_, true) => respond::NDJSON,
        _ => respond::TEXT,
    };
    Ok(reply(respond::streamed(content_type, first.chain(follow))))
}
