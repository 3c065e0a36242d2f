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

/// Prints a value the CLI made itself (not an API answer) as JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Prints `rows` under `header` in columns as wide as their widest cell,
/// two spaces apart (so ids of any width stay aligned).
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let header = header.map(String::from);
    let lines = || std::iter::once(&header).chain(rows);
    let widths: Vec<usize> = (0..N)
        .map(|i| lines().map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in lines() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
