//! The one way a command shows the API's answer: with `--json`, the JSON
//! exactly as the server sent it; otherwise decoded and rendered for
//! people.

use anyhow::Result;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{decode, Api};

/// GETs `path`; prints its JSON with `json`, else renders it.
pub fn show<T: DeserializeOwned>(
    api: &Api,
    path: &str,
    json: bool,
    render: impl FnOnce(T) -> Result<()>,
) -> Result<()> {
    answer("GET", path, api.get_text(path)?, json, render)
}

/// Sends `body` with `method`; prints the answer's JSON with `json`, else
/// renders it.
pub fn change<B: Serialize + ?Sized, T: DeserializeOwned>(
    api: &Api,
    method: Method,
    path: &str,
    body: &B,
    json: bool,
    render: impl FnOnce(T) -> Result<()>,
) -> Result<()> {
    let name = method.to_string();
    answer(
        &name,
        path,
        api.send_text(method, path, body)?,
        json,
        render,
    )
}

/// DELETEs `path`; prints the answer's JSON with `json`, else renders it.
pub fn delete<T: DeserializeOwned>(
    api: &Api,
    path: &str,
    json: bool,
    render: impl FnOnce(T) -> Result<()>,
) -> Result<()> {
    answer("DELETE", path, api.delete_text(path)?, json, render)
}

fn answer<T: DeserializeOwned>(
    method: &str,
    path: &str,
    text: String,
    json: bool,
    render: impl FnOnce(T) -> Result<()>,
) -> Result<()> {
    if json {
        println!("{}", text.trim_end());
        return Ok(());
    }
    render(decode(method, path, &text)?)
}

/// Whether to colour what goes to a stream: only for a person at a
/// terminal, and never when NO_COLOR is set to anything (no-color.org).
pub fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints a value the CLI made itself (not an API answer) as JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Prints `rows` under `header` in columns as wide as their widest cell,
/// two spaces apart (so ids of any width stay aligned).
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let header = header.map(String::from);
    columns(&[std::slice::from_ref(&header), rows].concat());
}

/// Prints `rows` in columns as wide as their widest cell, two spaces
/// apart, without a header (Heroku's lists under a `===` title).
pub fn columns<const N: usize>(rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// `256 MiB`, `1 GiB`, `1536 KiB`: whole units as users write them.
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes.is_multiple_of(*unit))
        .map_or(format!("{bytes} B"), |(unit, name)| {
            format!("{} {name}", bytes / unit)
        })
}

/// `10s`, `1500ms`.
pub fn duration_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::{duration_ms, size};

    #[test]
    fn sizes_and_durations_read_as_written() {
        assert_eq!(size(256 << 20), "256 MiB");
        assert_eq!(size(4 << 30), "4 GiB");
        assert_eq!(size(1536 << 10), "1536 KiB");
        assert_eq!(size(1000), "1000 B");
        assert_eq!(duration_ms(10_000), "10s");
        assert_eq!(duration_ms(1500), "1500ms");
    }
}
