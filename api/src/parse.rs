//! Parsers both sides of the API share: sizes (`256M`), durations
//! (`10s`), `TYPE=N` and `KEY=VALUE`. Errors quote the input on one line,
//! whatever it holds.

use std::time::Duration;

/// Input that is not what a parser takes; the message says why and shows
/// the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses a size such as `128M`, `1G`, `512K` or `4096` (bytes).
pub fn parse_size(text: &str) -> Result<usize, ParseError> {
    let text = text.trim();
    let shown = text.escape_debug();
    let (digits, unit) = split_number(text);
    let value: usize = digits.parse().map_err(|_| {
        ParseError(format!(
            "invalid size `{shown}`: expected a number like 128M"
        ))
    })?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        other => {
            return Err(ParseError(format!(
                "invalid size unit `{}` in `{shown}`: use K, M or G",
                other.escape_debug()
            )))
        }
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| ParseError(format!("size `{shown}` is too large")))
}

/// Parses a duration such as `30s`, `500ms`, `2m` or `10` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let text = text.trim();
    let shown = text.escape_debug();
    let (digits, unit) = split_number(text);
    let value: u64 = digits.parse().map_err(|_| {
        ParseError(format!(
            "invalid duration `{shown}`: expected e.g. 30s or 500ms"
        ))
    })?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "" | "s" => Ok(Duration::from_secs(value)),
        "m" => value
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| ParseError(format!("duration `{shown}` is too large"))),
        other => Err(ParseError(format!(
            "invalid duration unit `{}` in `{shown}`: use ms, s or m",
            other.escape_debug()
        ))),
    }
}

/// `128M` → (`128`, `M`).
fn split_number(text: &str) -> (&str, &str) {
    match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    }
}

/// `web=4` → (`web`, 4): a process type and a replica count.
pub fn parse_scale(change: &str) -> Result<(String, u32), ParseError> {
    let Some((kind, count)) = change.split_once('=') else {
        return Err(ParseError(format!(
            "{change:?} is not TYPE=N; try e.g. `wpaas ps:scale web=2`"
        )));
    };
    let Ok(count) = count.parse::<u32>() else {
        return Err(ParseError(format!(
            "{count:?} in {change:?} is not a number of replicas; try e.g. web=2"
        )));
    };
    if kind.is_empty() {
        return Err(ParseError(format!(
            "{change:?} names no process type; try e.g. web=2"
        )));
    }
    Ok((kind.to_string(), count))
}

/// `KEY=VALUE` → (`KEY`, `VALUE`); the value may hold `=` and be empty,
/// the key may not be empty.
pub fn parse_pair(pair: &str) -> Result<(String, String), ParseError> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(ParseError(format!(
            "`{}` is not KEY=VALUE",
            pair.escape_debug()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size(" 2 K "), Ok(2048));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn scale_and_pairs() {
        assert_eq!(parse_scale("web=4"), Ok(("web".into(), 4)));
        assert!(parse_scale("web").is_err());
        assert!(parse_scale("=2").is_err());
        assert!(parse_scale("web=-1").is_err());
        assert_eq!(parse_pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_pair("A="), Ok(("A".into(), String::new())));
        assert!(parse_pair("=x").is_err());
        assert!(parse_pair("novalue").is_err());
    }

    #[test]
    fn errors_stay_on_one_line() {
        let err = parse_duration("1\nh").unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
    }
}
