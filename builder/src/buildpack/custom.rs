//! Custom buildpacks on the Heroku classic contract (`bin/detect`,
//! `bin/compile`, optional `bin/release`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::{io_err, BuildError, Compiled, Ctx};
use crate::exec::{RunError, Stream};

/// The custom buildpack for this build: the one set for the app, else the
/// first entry of the source's `.buildpacks` file; checked to be usable.
pub(super) fn chosen(req: &super::BuildRequest) -> Result<Option<PathBuf>, BuildError> {
    let path = match &req.buildpack {
        Some(p) => p.clone(),
        None => {
            let file = req.source_dir.join(".buildpacks");
            let Ok(text) = fs::read_to_string(&file) else {
                return Ok(None);
            };
            let Some(line) = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
            else {
                return Ok(None);
            };
            if line.contains("://") {
                return Err(BuildError::BadBuildpack {
                    buildpack: line.to_string(),
                    reason:
                        "buildpack URLs are not supported in .buildpacks; give a directory path"
                            .into(),
                });
            }
            if Path::new(line).is_absolute() {
                // A buildpack installed on the server.
                return check(PathBuf::from(line)).map(Some);
            }
            let path = check(req.source_dir.join(line))?;
            // A relative path names a directory of the upload itself: not
            // another app's build next to it.
            let root = req
                .source_dir
                .canonicalize()
                .unwrap_or(req.source_dir.clone());
            if !path.starts_with(&root) {
                return Err(BuildError::BadBuildpack {
                    buildpack: line.to_string(),
                    reason: "a relative .buildpacks path must name a directory inside the upload"
                        .into(),
                });
            }
            return Ok(Some(path));
        }
    };
    check(path).map(Some)
}

/// A usable buildpack directory (it has `bin/detect` and `bin/compile`),
/// canonicalised.
pub fn check(path: PathBuf) -> Result<PathBuf, BuildError> {
    let shown = path.display().to_string();
    let bad = |reason: &str| BuildError::BadBuildpack {
        buildpack: shown.clone(),
        reason: reason.to_string(),
    };
    if !path.is_dir() {
        return Err(bad("no such directory"));
    }
    for script in ["bin/detect", "bin/compile"] {
        if !path.join(script).is_file() {
            return Err(bad(&format!("it has no {script}")));
        }
    }
    Ok(path.canonicalize().unwrap_or(path))
}

fn exit_text(status: ExitStatus) -> String {
    status
        .code()
        .map_or_else(|| "on a signal".to_string(), |c| c.to_string())
}

/// Receives the log and each output line of a script.
type LineSink<'s> = dyn FnMut(&mut dyn FnMut(&str), Stream, &str) + 's;

/// Runs one buildpack script in the build sandbox: the buildpack read-only
/// at `/buildpack`, `BUILD_DIR` at `/build` (the working directory); for
/// `bin/compile` also `CACHE_DIR` at `/cache`, `ENV_DIR` read-only at
/// `/env`, and network.
fn run_script(
    ctx: &mut Ctx<'_>,
    pack: &Path,
    script: &str,
    env_dir: Option<&Path>,
    on_line: &mut LineSink<'_>,
) -> Result<ExitStatus, BuildError> {
    let mut step = ctx.req.sandbox.step("");
    let pack_in = step.bind(pack, "/buildpack", false);
    let build_dir = step.bind(&ctx.req.slug_dir, "/build", true);
    step.program(pack_in.join("bin").join(script));
    step.arg(&build_dir);
    if let Some(env_dir) = env_dir {
        let cache = step.bind(&ctx.req.cache_dir, "/cache", true);
        let env = step.bind(env_dir, "/env", false);
        step.arg(&cache).arg(&env).network(true);
    }
    step.cwd(build_dir);
    let log = &mut *ctx.log;
    ctx.req
        .sandbox
        .run(step, ctx.deadline, &mut |stream, line| {
            on_line(&mut *log, stream, line)
        })
        .map_err(|e| match e {
            RunError::TimedOut => BuildError::TimedOut(ctx.req.timeout),
            RunError::Spawn(e) => BuildError::BadBuildpack {
                buildpack: pack.display().to_string(),
                reason: format!("could not run bin/{script}: {e}"),
            },
        })
}

pub(super) fn build(ctx: &mut Ctx<'_>, pack: &Path) -> Result<Compiled, BuildError> {
    let shown = pack.display().to_string();

    // bin/detect: its stdout is the name; its stderr is shown.
    let mut stdout = String::new();
    let status = run_script(
        ctx,
        pack,
        "detect",
        None,
        &mut |log, stream, line| match stream {
            Stream::Stdout => {
                stdout.push_str(line);
                stdout.push('\n');
            }
            Stream::Stderr => log(&format!("       {line}")),
        },
    )?;
    if !status.success() {
        return Err(BuildError::NotApplicable {
            buildpack: shown,
            status: exit_text(status),
        });
    }
    let name = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            pack.file_name()
                .map_or("custom".into(), |n| n.to_string_lossy().into_owned())
        });
    ctx.step(&format!("{name} app detected"));

    // bin/compile BUILD_DIR CACHE_DIR ENV_DIR, output shown as printed.
    let env_dir = tempfile::Builder::new()
        .prefix("wpaas-env-")
        .tempdir()
        .map_err(io_err("creating the ENV_DIR"))?;
    for (key, value) in &ctx.req.env {
        let valid = !key.is_empty()
            && key != "."
            && key != ".."
            && !key.contains('/')
            && !key.contains('\0');
        if !valid {
            return Err(BuildError::BadEnvKey(key.clone()));
        }
        fs::write(env_dir.path().join(key), value).map_err(io_err("writing the ENV_DIR"))?;
    }
    let status = run_script(
        ctx,
        pack,
        "compile",
        Some(env_dir.path()),
        &mut |log, _, line| log(line),
    )?;
    if !status.success() {
        return Err(BuildError::StepFailed {
            buildpack: name,
            step: "compile",
            status: exit_text(status),
        });
    }

    // bin/release (optional): default_process_types.
    let mut defaults = Vec::new();
    if pack.join("bin/release").is_file() {
        let mut yaml = String::new();
        let status = run_script(
            ctx,
            pack,
            "release",
            None,
            &mut |log, stream, line| match stream {
                Stream::Stdout => {
                    yaml.push_str(line);
                    yaml.push('\n');
                }
                Stream::Stderr => log(&format!("       {line}")),
            },
        )?;
        if !status.success() {
            return Err(BuildError::StepFailed {
                buildpack: name,
                step: "release",
                status: exit_text(status),
            });
        }
        defaults = default_process_types(&yaml);
    }
    Ok(Compiled {
        name,
        defaults,
        no_defaults_hint: String::new(),
    })
}

/// The `default_process_types` map of `bin/release`'s YAML, in order: the
/// block form (`key: value` lines indented under it) or an inline `{}`.
pub(crate) fn default_process_types(yaml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in yaml.lines() {
        let content = line.trim_end();
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let indented = content.starts_with([' ', '\t']);
        if !indented {
            inside = false;
            if let Some(rest) = content.strip_prefix("default_process_types:") {
                let rest = rest.trim();
                if rest.starts_with('{') {
                    let inner = rest.trim_start_matches('{').trim_end_matches('}');
                    for pair in inner.split(',') {
                        if let Some((k, v)) = pair.split_once(':') {
                            out.push((unquote(k.trim()), unquote(v.trim())));
                        }
                    }
                } else {
                    inside = true;
                }
            }
            continue;
        }
        if inside {
            if let Some((k, v)) = content.trim().split_once(':') {
                let (k, v) = (unquote(k.trim()), unquote(v.trim()));
                if !k.is_empty() && !v.is_empty() {
                    out.push((k, v));
                }
            }
        }
    }
    out
}

fn unquote(s: &str) -> String {
    let quoted = s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')));
    if quoted {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}
