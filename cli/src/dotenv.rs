//! `.env` files, the form `config:set --file`, `config:pull` and
//! `config:edit` read and write: `KEY=VALUE` a line, `#` comments, an
//! optional `export `, values bare, 'single-quoted' (taken as written) or
//! "double-quoted" (with `\n`, `\"`, `\\` escapes).

use std::collections::BTreeMap;

/// A line that is not `KEY=VALUE`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

/// The variables in `text`, in order of their names; a later line wins.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let mut vars = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let fail = |reason: &str| ParseError {
            line: index + 1,
            reason: reason.to_string(),
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(fail("not KEY=VALUE"));
        };
        let key = key.trim();
        if !valid_key(key) {
            return Err(fail(&format!(
                "{key:?} is not a variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        vars.insert(key.to_string(), value_of(value.trim()).map_err(fail)?);
    }
    Ok(vars)
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn value_of(value: &str) -> Result<String, &'static str> {
    if let Some(rest) = value.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("a ' quote is not closed")?;
        return only_comment_after(&rest[end + 1..]).map(|()| rest[..end].to_string());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => return only_comment_after(&rest[at + 1..]).map(|()| out),
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('"' | '\\' | '$')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err("a \" quote is not closed"),
                },
                c => out.push(c),
            }
        }
        return Err("a \" quote is not closed");
    }
    // Bare: a ` #` starts a comment.
    let bare = value.find(" #").map_or(value, |at| &value[..at]);
    Ok(bare.trim_end().to_string())
}

fn only_comment_after(rest: &str) -> Result<(), &'static str> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err("text after the closing quote")
    }
}

/// `vars` as a `.env` file that [`parse`] reads back to the same map.
pub fn render(vars: &BTreeMap<String, String>) -> String {
    vars.iter()
        .map(|(key, value)| format!("{key}={}\n", quote(value)))
        .collect()
}

fn quote(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+,=".contains(c));
    if bare {
        return value.to_string();
    }
    if !value.contains(['\'', '\n', '\r']) {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_common_forms() {
        let text =
            "# comment\n\nA=1\nexport B = two words # note\nC='x # y'\nD=\"a\\nb \\\"q\\\"\"\nE=\n";
        assert_eq!(
            parse(text).unwrap(),
            map(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "x # y"),
                ("D", "a\nb \"q\""),
                ("E", "")
            ])
        );
    }

    #[test]
    fn says_which_line_is_wrong() {
        assert_eq!(parse("A=1\nnonsense\n").unwrap_err().line, 2);
        assert_eq!(parse("1A=x").unwrap_err().line, 1);
        assert!(parse("A=\"open").unwrap_err().reason.contains("not closed"));
    }

    #[test]
    fn what_it_writes_it_reads_back() {
        let vars = map(&[
            ("PLAIN", "postgres://u@h:5432/db"),
            ("SPACES", "hello world"),
            ("QUOTES", "it's \"x\" $HOME \\ end"),
            ("LINES", "a\nb"),
            ("EMPTY", ""),
            ("HASH", "a #b"),
        ]);
        assert_eq!(parse(&render(&vars)).unwrap(), vars);
    }
}
