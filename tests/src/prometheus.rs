//! A strict parser of Prometheus's text exposition format (0.0.4), for
//! checking `GET /metrics` pages.

use std::collections::{BTreeMap, HashSet};

/// One sample: name, labels, value.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The metric name (with `_bucket`, `_sum`, `_count`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A metric family: its type and samples.
#[derive(Debug, Default)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`… (empty when undeclared).
    pub kind: String,
    /// Its samples, in page order.
    pub samples: Vec<Sample>,
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|_| format!("bad value {text:?}")),
    }
}

/// `name{a="b",c="d"} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let consumed;
        loop {
            // label name
            let start = match chars.peek() {
                Some(&(i, '}')) => {
                    consumed = i + 1;
                    break;
                }
                Some(&(i, _)) => i,
                None => return Err("unterminated labels".into()),
            };
            let mut eq = None;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq.ok_or("label without =")?;
            let key = &after[start..eq];
            if !valid_label_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((_, '\n')) | None => return Err("unterminated label value".into()),
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    consumed = i + 1;
                    break;
                }
                other => return Err(format!("expected , or }} after a label, got {other:?}")),
            }
        }
        rest = &after[consumed..];
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("bad timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The family a sample name belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, Family>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types
                .get(base)
                .is_some_and(|f| f.kind == "histogram" || f.kind == "summary")
            {
                return base;
            }
        }
    }
    name
}

/// Parses a whole page strictly: HELP/TYPE syntax, TYPE before samples and
/// at most once, each family's samples together, no repeated series,
/// counters not negative, histograms with ascending cumulative buckets
/// ending at +Inf equal to `_count`, and a `_sum`.
pub fn parse_exposition(text: &str) -> Result<BTreeMap<String, Family>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the page does not end with a newline".into());
    }
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["TYPE", name, kind] => {
                    if !valid_metric_name(name) {
                        return Err(at("bad name in TYPE".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    let family = families.entry(name.to_string()).or_default();
                    if !family.kind.is_empty() || !family.samples.is_empty() {
                        return Err(at("TYPE repeated or after samples".into()));
                    }
                    family.kind = kind.to_string();
                }
                ["HELP", name, ..] if valid_metric_name(name) => {}
                ["HELP", ..] | ["TYPE", ..] => return Err(at("malformed HELP/TYPE".into())),
                _ => {} // a comment
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&sample.name, &families).to_string();
        if current.as_deref() != Some(&family) {
            if let Some(previous) = current.take() {
                finished.insert(previous);
            }
            if finished.contains(&family) {
                return Err(at(format!("samples of {family} are not together")));
            }
            current = Some(family.clone());
        }
        if !series.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(at("repeated series".into()));
        }
        let entry = families.entry(family).or_default();
        if entry.kind == "counter" && (sample.value < 0.0 || sample.value.is_nan()) {
            return Err(at("negative counter".into()));
        }
        entry.samples.push(sample);
    }
    for (name, family) in &families {
        if family.kind != "histogram" {
            continue;
        }
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in family
            .samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
        {
            let mut labels = s.labels.clone();
            let le = labels
                .remove("le")
                .ok_or(format!("{name}: bucket without le"))?;
            groups
                .entry(labels)
                .or_default()
                .push((parse_value(&le)?, s.value));
        }
        for (labels, buckets) in groups {
            let find = |suffix: &str| {
                family
                    .samples
                    .iter()
                    .find(|s| s.name == format!("{name}{suffix}") && s.labels == labels)
                    .map(|s| s.value)
            };
            let count = find("_count").ok_or(format!("{name} {labels:?}: no _count"))?;
            find("_sum").ok_or(format!("{name} {labels:?}: no _sum"))?;
            let ascending = buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
            if !ascending {
                return Err(format!(
                    "{name} {labels:?}: buckets not ascending/cumulative"
                ));
            }
            match buckets.last() {
                Some(&(le, n)) if le == f64::INFINITY && n == count => {}
                _ => {
                    return Err(format!(
                        "{name} {labels:?}: +Inf bucket missing or ≠ _count"
                    ))
                }
            }
        }
    }
    Ok(families)
}

/// The one sample called `name` with (at least) `labels`.
pub fn value(families: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples: Vec<&Sample> = families
        .values()
        .flat_map(|f| &f.samples)
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(samples.len(), 1, "{name} {labels:?}: {samples:?}");
    samples[0].value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strict_parser_rejects_what_it_should() {
        assert!(parse_exposition("# TYPE a counter\na 1\n").is_ok());
        assert!(parse_exposition("a{b=\"x\\\"y\",c=\"\"} 1 1700000000\n").is_ok());
        for bad in [
            "a 1",                      // no newline
            "a{b=x} 1\n",               // unquoted
            "1a 1\n",                   // bad name
            "a one\n",                  // bad value
            "a 1\na 2\n",               // repeated series
            "a 1\nb 1\na{x=\"1\"} 1\n", // family split
            "# TYPE a counter\na -1\n", // negative counter
            "a 1\n# TYPE a counter\n",  // TYPE after samples
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
        ] {
            assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
        }
    }
}
