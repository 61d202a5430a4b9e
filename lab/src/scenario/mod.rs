//! Scenario files: parse → validate → plan → run → measure → expect.
//!
//! Nothing touches the kernel before a scenario has parsed and validated: a
//! malformed file is an error with its line, column and key, and no network
//! is built for it.

pub mod assemble;
pub mod attribution;
pub mod byo;
pub mod byo_view;
pub mod expect;
pub mod failover;
pub mod keepalived;
pub mod locate;
pub mod plan;
pub mod rebalance;
pub mod run;
pub mod scheduler;
pub mod spec;
pub mod stall;
pub mod templates;
pub mod validate;

use std::path::{Path, PathBuf};

pub use spec::ScenarioFile;
pub use validate::Invalid;

/// The folder scenarios are looked up in when named without a path.
pub const SCENARIO_DIR: &str = "scenarios";

/// A scenario file that parsed and validated.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file's stem (`rr-persistence`).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Its content.
    pub file: ScenarioFile,
}

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// No file by that name or path.
    #[error("no scenario '{name}': looked for {tried}. `lab list` shows the scenarios in {dir}/")]
    NotFound {
        /// What was asked for.
        name: String,
        /// The paths tried.
        tried: String,
        /// The scenario folder.
        dir: String,
    },
    /// The file could not be read.
    #[error("cannot read scenario {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("{path}:{line}:{column}: {message}{key_hint}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The offending key or text, when known.
        key: Option<String>,
        /// ` (at 'key')` when a key is known, else empty.
        key_hint: String,
        /// What the parser said.
        message: String,
    },
    /// The file parsed but its values do not make sense.
    #[error("{}", describe_problems(path, problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Invalid>,
    },
}

/// `path:line:column: key: message` for each problem (`path: key: message`
/// where no line is known), joined by `; `.
fn describe_problems(path: &Path, problems: &[Invalid]) -> String {
    problems
        .iter()
        .map(|p| match p.at {
            Some(_) => format!("{}:{p}", path.display()),
            None => format!("{}: {p}", path.display()),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Scenario {
    /// Finds a scenario by file name (`rr-persistence`, looked up in
    /// `scenarios/`) or by path, then parses and validates it.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        let path = locate(name_or_path)?;
        let text = std::fs::read_to_string(&path).map_err(|source| ScenarioError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_str(&path, &text)
    }

    /// Parses and validates scenario text read from `path`.
    pub fn from_str(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        let mut problems = validate::validate(&file);
        for p in &mut problems {
            p.at = locate::locate(text, &p.key);
        }
        if !problems.is_empty() {
            return Err(ScenarioError::Invalid {
                path: path.to_path_buf(),
                problems,
            });
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        Ok(Self {
            name,
            path: path.to_path_buf(),
            file,
        })
    }

    /// The directory the scenario file lies in (`{scenario_dir}`).
    pub fn dir(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
    }

    /// Looks up the programs of the user's `[server]` and `[client]`
    /// commands: a missing one is a bad scenario, found before anything is
    /// built (it needs the file system, so it is not part of parsing).
    pub fn check_commands(&self) -> Result<(), ScenarioError> {
        let mut problems = byo::check_programs(&self.file, &self.dir());
        if problems.is_empty() {
            return Ok(());
        }
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            for p in &mut problems {
                p.at = locate::locate(&text, &p.key);
            }
        }
        Err(ScenarioError::Invalid {
            path: self.path.clone(),
            problems,
        })
    }

    /// The real servers' names, in file order.
    pub fn server_names(&self) -> Vec<String> {
        self.file
            .virtual_server
            .real_servers
            .iter()
            .enumerate()
            .map(|(i, rs)| validate::server_name(i, rs.name.as_deref()))
            .collect()
    }
}

fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> ScenarioError {
    let (line, column, key) = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // The key is the one written on the offending line (`key = ...`);
            // for a bad table header or a stray token, the text at the span.
            let line_text = text.lines().nth(line - 1).unwrap_or("");
            let line_key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim().to_string())
                .filter(|k| !k.is_empty() && !k.starts_with('['));
            let snippet = text
                .get(span.clone())
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty() && s.len() <= 60 && !s.contains('\n'));
            (line, column, line_key.or(snippet))
        }
        None => (1, 1, None),
    };
    ScenarioError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key_hint: key
            .as_ref()
            .map(|k| format!(" (at '{k}')"))
            .unwrap_or_default(),
        key,
        message: e.message().trim().to_string(),
    }
}

/// Resolves a scenario name or path to a file.
pub fn locate(name_or_path: &str) -> Result<PathBuf, ScenarioError> {
    let direct = PathBuf::from(name_or_path);
    let mut tried = vec![direct.clone()];
    if direct.is_file() {
        return Ok(direct);
    }
    if !name_or_path.contains('/') {
        for dir in scenario_dirs() {
            for candidate in [
                dir.join(format!("{name_or_path}.toml")),
                dir.join(name_or_path),
            ] {
                if candidate.is_file() {
                    return Ok(candidate);
                }
                tried.push(candidate);
            }
        }
    }
    Err(ScenarioError::NotFound {
        name: name_or_path.into(),
        tried: tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        dir: SCENARIO_DIR.into(),
    })
}

/// Where named scenarios are looked for: `./scenarios`, then the folder
/// beside the workspace this binary was built from (so `cargo run` works
/// from any directory of the checkout).
pub fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(SCENARIO_DIR)];
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(SCENARIO_DIR);
    if built.is_dir() {
        dirs.push(built);
    }
    dirs
}

/// Every `*.toml` in the first scenario folder that exists, sorted by name,
/// each loaded (so a broken file shows up as an error in the list).
pub fn list() -> Vec<(PathBuf, Result<Scenario, ScenarioError>)> {
    let Some(dir) = scenario_dirs().into_iter().find(|d| d.is_dir()) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let loaded = std::fs::read_to_string(&p)
                .map_err(|source| ScenarioError::Read {
                    path: p.clone(),
                    source,
                })
                .and_then(|text| Scenario::from_str(&p, &text));
            (p, loaded)
        })
        .collect()
}

#[cfg(test)]
mod tests;
