//! The Procfile: which process types an app has and what each one runs.
//!
//! ```text
//! # comments and blank lines are ignored
//! web: app.wasm --port 8080
//! worker: jobs/worker.wasm --queue "high priority" $QUEUE
//! ```
//!
//! Each line is `type: command`. The type is `[a-z0-9_-]+`, at most 63
//! characters, declared once. The command's first word is the `.wasm` module
//! to run, a path relative to the slug; the other words are its argv
//! (split on whitespace; `'…'`, `"…"` and `\` quote as in a shell). `$VARS`
//! are left as written: the host expands them from config at start.

use std::fmt;
use std::path::{Component, Path};

/// Longest allowed process type name (a DNS label).
pub const MAX_TYPE_LEN: usize = 63;

/// One process type declared in a Procfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    /// The type name: `web`, `worker`, `release`, …
    pub name: String,
    /// The whole command as written after the colon (trimmed).
    pub command: String,
    /// The module to run, relative to the slug (no leading `./`).
    pub wasm: String,
    /// The arguments after the module, unquoted.
    pub args: Vec<String>,
    /// The 1-based line it was declared on, for error messages.
    pub line: usize,
}

/// A parsed, syntactically valid Procfile; types in declaration order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Procfile {
    /// The declared process types, in file order.
    pub types: Vec<ProcessType>,
}

/// What is wrong with a Procfile. Each message is one line naming the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    /// A non-blank, non-comment line without `type: command`.
    #[error("Procfile line {line}: expected `type: command`, found {text:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// The type name has characters outside `[a-z0-9_-]` or is too long.
    #[error(
        "Procfile line {line}: invalid process type {name:?} (use a-z, 0-9, _ and -, at most 63 characters)"
    )]
    InvalidType {
        /// 1-based line number.
        line: usize,
        /// The name as written.
        name: String,
    },
    /// The same type is declared twice.
    #[error("Procfile line {line}: process type {name:?} is already declared on line {first}")]
    Duplicate {
        /// 1-based line number of the second declaration.
        line: usize,
        /// The type name.
        name: String,
        /// Where it was first declared.
        first: usize,
    },
    /// `type:` with nothing after it.
    #[error("Procfile line {line}: process type {name:?} has no command")]
    EmptyCommand {
        /// 1-based line number.
        line: usize,
        /// The type name.
        name: String,
    },
    /// An unterminated quote in the command.
    #[error("Procfile line {line}: unterminated quote in the command of {name:?}")]
    Quote {
        /// 1-based line number.
        line: usize,
        /// The type name.
        name: String,
    },
    /// The command does not start with a `.wasm` file.
    #[error(
        "Procfile line {line}: the command of {name:?} must start with a .wasm module in the app, found {program:?}"
    )]
    NotWasm {
        /// 1-based line number.
        line: usize,
        /// The type name.
        name: String,
        /// The first word of the command.
        program: String,
    },
    /// The module path is absolute or climbs out with `..`.
    #[error(
        "Procfile line {line}: module {wasm:?} of {name:?} must be a path inside the app (relative, no ..)"
    )]
    PathOutside {
        /// 1-based line number.
        line: usize,
        /// The type name.
        name: String,
        /// The path as written.
        wasm: String,
    },
    /// The module named by a type is not in the slug.
    #[error(
        "Procfile line {line}: process type {name:?} runs {wasm}, which is not in the app{hint}"
    )]
    MissingModule {
        /// 1-based line number.
        line: usize,
        /// The type name.
        name: String,
        /// The module path.
        wasm: String,
        /// `" (it has: a.wasm, b.wasm)"` or empty.
        hint: String,
    },
    /// No process types at all.
    #[error("the Procfile declares no process types (add a line like `web: app.wasm`)")]
    Empty,
}

/// Whether `name` can name a process type: 1 to [`MAX_TYPE_LEN`] lowercase
/// letters, digits, `_` or `-`, so that `NAME.N` is a process name (`DYNO`)
/// and a log source without quoting.
pub fn valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TYPE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl ProcessType {
    /// What the process runs with: the module (as in the slug), then the
    /// arguments, unquoted, `$VARS` still unexpanded.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.wasm.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

impl Procfile {
    /// Parses Procfile text and checks its syntax, names and module paths
    /// (not whether the modules exist: see [`Procfile::validate_modules`]).
    pub fn parse(text: &str) -> Result<Procfile, ProcfileError> {
        let mut types: Vec<ProcessType> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((name, command)) = trimmed.split_once(':') else {
                return Err(ProcfileError::Syntax {
                    line,
                    text: trimmed.to_string(),
                });
            };
            let name = name.trim();
            if !valid_type_name(name) {
                return Err(ProcfileError::InvalidType {
                    line,
                    name: name.to_string(),
                });
            }
            if let Some(first) = types.iter().find(|t| t.name == name) {
                return Err(ProcfileError::Duplicate {
                    line,
                    name: name.to_string(),
                    first: first.line,
                });
            }
            let command = command.trim();
            let words = split_words(command).ok_or_else(|| ProcfileError::Quote {
                line,
                name: name.to_string(),
            })?;
            let Some((program, args)) = words.split_first() else {
                return Err(ProcfileError::EmptyCommand {
                    line,
                    name: name.to_string(),
                });
            };
            if !program.ends_with(".wasm") {
                return Err(ProcfileError::NotWasm {
                    line,
                    name: name.to_string(),
                    program: program.clone(),
                });
            }
            let wasm =
                normalize_module_path(program).ok_or_else(|| ProcfileError::PathOutside {
                    line,
                    name: name.to_string(),
                    wasm: program.clone(),
                })?;
            types.push(ProcessType {
                name: name.to_string(),
                command: command.to_string(),
                wasm,
                args: args.to_vec(),
                line,
            });
        }
        if types.is_empty() {
            return Err(ProcfileError::Empty);
        }
        Ok(Procfile { types })
    }

    /// Builds a Procfile from `(type, command)` pairs, e.g. a buildpack's
    /// default process types; line numbers are those of [`Procfile::to_string`].
    pub(crate) fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Procfile, ProcfileError> {
        let text: String = pairs
            .into_iter()
            .map(|(name, command)| format!("{name}: {command}\n"))
            .collect();
        Procfile::parse(&text)
    }

    /// Checks that every module exists in `slug_dir` as a file inside it.
    pub(crate) fn validate_modules(&self, slug_dir: &Path) -> Result<(), ProcfileError> {
        let root = slug_dir.canonicalize().ok();
        for t in &self.types {
            let path = slug_dir.join(&t.wasm);
            let inside = match (path.canonicalize(), &root) {
                (Ok(real), Some(root)) => real.starts_with(root) && real.is_file(),
                _ => false,
            };
            if !inside {
                let found = wasm_files(slug_dir);
                let hint = if found.is_empty() {
                    " (it has no .wasm files)".to_string()
                } else {
                    let shown: Vec<_> = found.iter().take(5).map(String::as_str).collect();
                    let more = if found.len() > 5 { ", …" } else { "" };
                    format!(" (it has: {}{more})", shown.join(", "))
                };
                return Err(ProcfileError::MissingModule {
                    line: t.line,
                    name: t.name.clone(),
                    wasm: t.wasm.clone(),
                    hint,
                });
            }
        }
        Ok(())
    }

    /// The process type called `name`.
    pub fn get(&self, name: &str) -> Option<&ProcessType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// The type names in declaration order, for build output.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.types.iter().map(|t| t.name.as_str()).collect()
    }
}

impl fmt::Display for Procfile {
    /// The Procfile text: one `type: command` line per type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.types {
            writeln!(f, "{}: {}", t.name, t.command)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Procfile {
    type Err = ProcfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Procfile::parse(s)
    }
}

/// The `.wasm` files under `dir`, relative, sorted (skipping `target/`,
/// `.git/`, `node_modules/`).
pub(crate) fn wasm_files(dir: &Path) -> Vec<String> {
    files_with_ext(dir, "wasm")
        .into_iter()
        .map(|rel| rel.to_string_lossy().into_owned())
        .collect()
}

/// Files with extension `ext` under `dir`, relative, sorted; `target/`,
/// `.git/` and `node_modules/` (a JavaScript app's dependencies, rebuilt
/// on the server) are not looked into.
pub(crate) fn files_with_ext(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .follow_links(false)
        .filter_entry(|e| {
            e.depth() == 0
                || !matches!(
                    e.file_name().to_str(),
                    Some(".git") | Some("target") | Some("node_modules")
                )
        })
        .build();
    for entry in walker.flatten() {
        let is_file = entry.file_type().is_some_and(|t| t.is_file());
        if is_file && entry.path().extension().is_some_and(|e| e == ext) {
            if let Ok(rel) = entry.path().strip_prefix(dir) {
                found.push(rel.to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// `./a/b.wasm` → `a/b.wasm`; `None` for absolute paths or `..`.
fn normalize_module_path(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// Splits a command into words, shell-style: whitespace separates, `'…'`
/// quotes literally, `"…"` quotes with `\"` and `\\` escapes, `\x` escapes
/// outside quotes. `None` on an unterminated quote. The host uses it too,
/// for releases recorded before they stored each type's argv.
pub fn split_words(command: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_in_order_ignoring_comments() {
        let text =
            "# my app\n\nweb: app.wasm --port 80\n  worker:./jobs/w.wasm  'a b' \"c\\\"d\" $Q\n";
        let p = Procfile::parse(text).unwrap();
        assert_eq!(p.names(), ["web", "worker"]);
        let web = p.get("web").unwrap();
        assert_eq!(
            (web.wasm.as_str(), web.args.clone(), web.line),
            ("app.wasm", vec!["--port".to_string(), "80".into()], 3)
        );
        let w = p.get("worker").unwrap();
        assert_eq!(w.wasm, "jobs/w.wasm");
        assert_eq!(w.args, ["a b", "c\"d", "$Q"]);
        assert_eq!(w.line, 4);
        assert_eq!(w.command, "./jobs/w.wasm  'a b' \"c\\\"d\" $Q");
    }

    #[test]
    fn round_trips_through_to_string() {
        let p = Procfile::parse("web: app.wasm --x 'y z'\nworker: w.wasm\n").unwrap();
        let text = p.to_string();
        assert_eq!(text, "web: app.wasm --x 'y z'\nworker: w.wasm\n");
        assert_eq!(Procfile::parse(&text).unwrap(), p);
        let d = Procfile::from_pairs([("web", "a.wasm"), ("clock", "c.wasm -v")]).unwrap();
        assert_eq!(d.get("clock").unwrap().line, 2);
        assert_eq!(d.to_string(), "web: a.wasm\nclock: c.wasm -v\n");
    }

    #[test]
    fn rejects_bad_names_with_line_numbers() {
        let err = Procfile::parse("web: a.wasm\n\nWeb!: b.wasm\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Procfile line 3: invalid process type \"Web!\" (use a-z, 0-9, _ and -, at most 63 characters)"
        );
        let long = format!("{}: a.wasm", "a".repeat(64));
        assert!(matches!(
            Procfile::parse(&long),
            Err(ProcfileError::InvalidType { line: 1, .. })
        ));
        let ok = format!("{}: a.wasm", "a".repeat(63));
        assert!(Procfile::parse(&ok).is_ok());
        assert!(matches!(
            Procfile::parse("my app: a.wasm"),
            Err(ProcfileError::InvalidType { .. })
        ));
    }

    #[test]
    fn rejects_other_mistakes() {
        let err = Procfile::parse("web: a.wasm\nworker: b.wasm\nweb: c.wasm").unwrap_err();
        assert_eq!(
            err,
            ProcfileError::Duplicate {
                line: 3,
                name: "web".into(),
                first: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "Procfile line 3: process type \"web\" is already declared on line 1"
        );
        assert!(matches!(
            Procfile::parse("just text"),
            Err(ProcfileError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            Procfile::parse("web:   "),
            Err(ProcfileError::EmptyCommand { line: 1, .. })
        ));
        assert!(matches!(
            Procfile::parse("web: node server.js"),
            Err(ProcfileError::NotWasm { .. })
        ));
        assert!(matches!(
            Procfile::parse("web: /bin/x.wasm"),
            Err(ProcfileError::PathOutside { .. })
        ));
        assert!(matches!(
            Procfile::parse("web: ../x.wasm"),
            Err(ProcfileError::PathOutside { .. })
        ));
        assert!(matches!(
            Procfile::parse("web: a.wasm 'oops"),
            Err(ProcfileError::Quote { .. })
        ));
        assert_eq!(Procfile::parse("# nothing\n\n"), Err(ProcfileError::Empty));
    }

    #[test]
    fn validates_modules_against_the_slug() {
        let slug = tempfile::tempdir().unwrap();
        std::fs::create_dir(slug.path().join("bin")).unwrap();
        std::fs::write(slug.path().join("bin/app.wasm"), b"\0asm").unwrap();
        let p = Procfile::parse("web: bin/app.wasm\n").unwrap();
        p.validate_modules(slug.path()).unwrap();

        let p = Procfile::parse("web: bin/app.wasm\n# x\nworker: gone.wasm\n").unwrap();
        let err = p.validate_modules(slug.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Procfile line 3: process type \"worker\" runs gone.wasm, which is not in the app (it has: bin/app.wasm)"
        );
        // A directory named like a module is not a module.
        std::fs::create_dir(slug.path().join("dir.wasm")).unwrap();
        let p = Procfile::parse("web: dir.wasm").unwrap();
        assert!(matches!(
            p.validate_modules(slug.path()),
            Err(ProcfileError::MissingModule { .. })
        ));
    }
}
