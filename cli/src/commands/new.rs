//! `wpaas new NAME [--template T]`: write a working app into ./NAME, like
//! `spin new`. The templates are the directories of `cli/templates/`,
//! embedded at build time (build.rs); `{{name}}` in a file becomes NAME.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::Hinted;

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Create a new app from a template in ./NAME (or --dir), ready for
/// `wpaas deploy`.
#[derive(clap::Args)]
pub struct New {
    /// The app's name (2-30 characters: lowercase letters, digits and
    /// dashes, starting with a letter); also the directory's.
    #[arg(required_unless_present = "list")]
    name: Option<String>,

    /// The template: rust (wpaas-sdk), wagi (a CGI program in Rust),
    /// python (the wpaas Python SDK's handle(request)), js (a fetch
    /// handler), or any other `wpaas new --list` shows.
    #[arg(long, short = 't', default_value = "rust")]
    template: String,

    /// Where to write the app (default: ./NAME). It must not exist or be
    /// empty.
    #[arg(long)]
    dir: Option<PathBuf>,

    /// List the templates and exit.
    #[arg(long)]
    list: bool,

    /// Print what was made as JSON (`{"name", "template", "dir", "files"}`;
    /// with --list, the templates' names).
    #[arg(long)]
    json: bool,
}

impl New {
    pub fn run(self) -> Result<()> {
        if self.list {
            if self.json {
                let names: Vec<&str> = TEMPLATES.iter().map(|(name, _)| *name).collect();
                return crate::output::print_json(&names);
            }
            for (name, _) in TEMPLATES {
                println!("{name}");
            }
            return Ok(());
        }
        let name = self.name.as_deref().unwrap_or_default();
        wpaas_host::control::store::validate_app_name(name).map_err(|e| {
            Hinted::new(
                e.to_string(),
                "e.g. `wpaas new my-app`; the name is also the app's on the server",
            )
        })?;
        let files = template(&self.template)?;
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from(name));
        ensure_empty(&dir)?;
        for (path, text) in files {
            let file = dir.join(path);
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("could not create {}", parent.display()))?;
            }
            fs::write(&file, text.replace("{{name}}", name))
                .with_context(|| format!("could not write {}", file.display()))?;
        }
        if self.json {
            let paths: Vec<&str> = files.iter().map(|(path, _)| *path).collect();
            return crate::output::print_json(&serde_json::json!({
                "name": name,
                "template": self.template,
                "dir": dir,
                "files": paths,
            }));
        }
        println!(
            "Created {} from the {} template in {}",
            name,
            self.template,
            dir.display()
        );
        // `wpaas up` builds Rust crates (and serves .wasm files) only.
        let up = if files.iter().any(|(p, _)| *p == "Cargo.toml") {
            "   (or `wpaas up` to run it here)"
        } else {
            ""
        };
        println!("Next: cd {} && wpaas deploy{up}", dir.display());
        Ok(())
    }
}

/// The files of template `name`.
fn template(name: &str) -> Result<&'static [(&'static str, &'static str)]> {
    match TEMPLATES.iter().find(|(t, _)| *t == name) {
        Some((_, files)) => Ok(files),
        None => {
            let known: Vec<&str> = TEMPLATES.iter().map(|(t, _)| *t).collect();
            Err(Hinted::new(
                format!("unknown template {name:?}"),
                format!("choose one of: {}", known.join(", ")),
            )
            .into())
        }
    }
}

/// Refuses a directory that exists with something in it (or a file).
fn ensure_empty(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Hinted::new(
                    format!("{} already exists and is not empty", dir.display()),
                    "choose another name, or --dir for another directory",
                )
                .into());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if dir.exists() && !dir.is_dir() => Err(Hinted::new(
            format!(
                "{} already exists and is not a directory ({e})",
                dir.display()
            ),
            "choose another name, or --dir for another directory",
        )
        .into()),
        Err(e) => Err(e).with_context(|| format!("could not read {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rust_and_wagi_templates_are_embedded_with_a_manifest() {
        for name in ["rust", "wagi"] {
            let files = template(name).unwrap();
            let manifest = files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
            assert!(manifest.contains("name = \"{{name}}\""), "{name}");
            assert!(files.iter().any(|(p, _)| *p == "src/main.rs"), "{name}");
        }
        assert!(template("cobol").is_err());
    }

    #[test]
    fn the_js_template_is_a_package_with_a_fetch_handler() {
        let files = template("js").unwrap();
        let package = files.iter().find(|(p, _)| *p == "package.json").unwrap().1;
        let package: serde_json::Value = serde_json::from_str(package).unwrap();
        assert_eq!(package["name"], "{{name}}");
        assert_eq!(package["main"], "index.js");
        let index = files.iter().find(|(p, _)| *p == "index.js").unwrap().1;
        assert!(index.contains("addEventListener(\"fetch\""));
        assert!(files.iter().any(|(p, _)| *p == ".gitignore"));
    }

    #[test]
    fn the_python_template_is_an_app_py_with_a_handler() {
        let files = template("python").unwrap();
        let app = files.iter().find(|(p, _)| *p == "app.py").unwrap().1;
        assert!(app.contains("def handle(request):"));
        assert!(app.contains("from {{name}}!"));
        assert!(files.iter().any(|(p, _)| *p == "requirements.txt"));
    }

    #[test]
    fn every_template_directory_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk: Vec<String> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = TEMPLATES.iter().map(|(t, _)| t.to_string()).collect();
        assert_eq!(on_disk, embedded);
    }
}
