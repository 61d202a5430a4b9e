//! "Bring your own": the user's server and client commands (`[server]`,
//! `command` in a `[[virtual_server.real_server]]`, `[client]`), their
//! placeholders, and the checks made before anything is built.
//!
//! A command is an argv list, never a shell string: each element may hold
//! `{placeholders}`, filled per server or per client address. Relative
//! paths are left alone and resolve against the directory `lab` was started
//! from, which the UML guest keeps as its own working directory; the
//! `{scenario_dir}` placeholder is there for paths next to the scenario.
//!
//! `[client]` and `[load]`: by default the client round replaces the load
//! generator (the `[load]` rounds do not run; its `max_connection_age`
//! still reaches the servers). With `after_load = true` the `[load]`
//! rounds run first and the client round follows. Phases count from the
//! start of the first round that runs, the client's when it is the only one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spec::ScenarioFile;
use super::validate::Invalid;

/// `[server]`: every real server runs this command instead of `lab server`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCommand {
    /// The argv, with placeholders (see [`SERVER_PLACEHOLDERS`]). Optional
    /// when every real server has its own `command`.
    #[serde(default)]
    pub command: Vec<String>,
    /// How the lab knows the server is up.
    #[serde(default)]
    pub ready: Readiness,
    /// How long the server may take to get ready.
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub ready_timeout: Duration,
}

impl Default for ServerCommand {
    fn default() -> Self {
        Self {
            command: Vec::new(),
            ready: Readiness::default(),
            ready_timeout: default_ready_timeout(),
        }
    }
}

fn default_ready_timeout() -> Duration {
    Duration::from_secs(20)
}

/// How a user server's readiness is probed (from the director namespace,
/// at the real server's own address and port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// A TCP connect succeeds.
    #[default]
    Tcp,
    /// `grpc.health.v1.Health/Check` answers SERVING.
    GrpcHealth,
}

/// `[client]`: the user's own client, run in the client namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCommand {
    /// The argv, with placeholders (see [`CLIENT_PLACEHOLDERS`]).
    pub command: Vec<String>,
    /// One process per client IP (`ip`), or one in all (`once`).
    #[serde(default)]
    pub per: ClientPer,
    /// Run the `[load]` rounds of `lab loadgen` first, then the client
    /// (default: the client round replaces the load generator).
    #[serde(default)]
    pub after_load: bool,
    /// The longest the client may run before it is killed (an error).
    #[serde(default = "default_client_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_client_timeout() -> Duration {
    Duration::from_secs(60)
}

/// How many client processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientPer {
    /// One per client source address, `{source}` set to it.
    #[default]
    Ip,
    /// One in all, `{source}` set to every address, comma-separated.
    Once,
}

/// What a server command may name.
pub const SERVER_PLACEHOLDERS: &[&str] =
    &["name", "address", "port", "vip", "python", "scenario_dir"];
/// What a client command may name.
pub const CLIENT_PLACEHOLDERS: &[&str] = &["vip", "port", "source", "python", "scenario_dir"];

/// The placeholders named in `template`, or why it is malformed. `{{` and
/// `}}` stand for literal braces.
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("'{{{name}' is not closed with '}}'")),
                    }
                }
                names.push(name);
            }
            '}' => return Err("a lone '}' (write '}}' for a literal brace)".into()),
            _ => {}
        }
    }
    Ok(names)
}

/// `template` with every `{name}` replaced by its value. Unknown names are
/// a validation error, so here they are left as written.
pub fn expand(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(&name);
                        out.push('}');
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The command a real server runs (`None`: the lab's own `lab server`):
/// its own `command`, else `[server] command`.
pub fn server_command(file: &ScenarioFile, index: usize) -> Option<&[String]> {
    let own = file
        .virtual_server
        .real_servers
        .get(index)
        .and_then(|r| r.command.as_deref());
    own.or_else(|| {
        file.server
            .as_ref()
            .map(|s| s.command.as_slice())
            .filter(|c| !c.is_empty())
    })
}

/// Checks the commands' shapes and placeholders (pure; the programs
/// themselves are looked up by [`check_programs`]).
pub fn validate(file: &ScenarioFile, problems: &mut Vec<Invalid>) {
    for (i, rs) in file.virtual_server.real_servers.iter().enumerate() {
        if let Some(cmd) = &rs.command {
            check_argv(
                &format!("virtual_server.real_server[{i}].command"),
                cmd,
                SERVER_PLACEHOLDERS,
                problems,
            );
        }
    }
    if let Some(server) = &file.server {
        let every_own = file
            .virtual_server
            .real_servers
            .iter()
            .all(|r| r.command.is_some());
        if server.command.is_empty() && !every_own {
            problems.push(invalid(
                "server.command",
                "[server] needs a command, e.g. command = [\"{python}\", \"server.py\", \"--port\", \"{port}\"] \
                 (or a command in every real_server)",
            ));
        } else {
            check_argv(
                "server.command",
                &server.command,
                SERVER_PLACEHOLDERS,
                problems,
            );
        }
        if server.ready_timeout.is_zero() || server.ready_timeout > Duration::from_secs(600) {
            problems.push(invalid(
                "server.ready_timeout",
                "must be between 1 ms and 10 min",
            ));
        }
    }
    if let Some(client) = &file.client {
        if client.command.is_empty() {
            problems.push(invalid(
                "client.command",
                "[client] needs a command, e.g. command = [\"{python}\", \"client.py\", \"--target\", \"{vip}:{port}\"]",
            ));
        }
        check_argv(
            "client.command",
            &client.command,
            CLIENT_PLACEHOLDERS,
            problems,
        );
        if client.timeout.is_zero() || client.timeout > Duration::from_secs(3600) {
            problems.push(invalid("client.timeout", "must be between 1 ms and 1 h"));
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
        at: None,
    }
}

fn check_argv(key: &str, argv: &[String], known: &[&str], problems: &mut Vec<Invalid>) {
    if argv.first().is_some_and(|p| p.trim().is_empty()) {
        problems.push(invalid(&format!("{key}[0]"), "the program is empty"));
    }
    for (j, arg) in argv.iter().enumerate() {
        let at = format!("{key}[{j}]");
        match placeholders(arg) {
            Err(e) => problems.push(invalid(&at, e)),
            Ok(names) => {
                for n in names.iter().filter(|n| !known.contains(&n.as_str())) {
                    problems.push(invalid(
                        &at,
                        format!(
                            "unknown placeholder {{{n}}}; known here: {}",
                            known
                                .iter()
                                .map(|k| format!("{{{k}}}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    ));
                }
            }
        }
    }
}

/// The project's Python (`.venv/bin/python3`, made by `make deps`): looked
/// for above the working directory, then above the lab binary.
pub fn find_python() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    [cwd, exe]
        .into_iter()
        .flatten()
        .flat_map(|start| {
            start
                .ancestors()
                .map(|d| d.join(".venv/bin/python3"))
                .collect::<Vec<_>>()
        })
        .find(|p| p.is_file())
}

/// Looks up every program the scenario's commands start (after `{python}`
/// and `{scenario_dir}` are filled): a missing one is a bad scenario (65),
/// found before anything is built.
pub fn check_programs(file: &ScenarioFile, scenario_dir: &Path) -> Vec<Invalid> {
    let mut problems = Vec::new();
    let mut argvs: Vec<(String, &[String])> = (0..file.virtual_server.real_servers.len())
        .filter_map(|i| {
            let own = file.virtual_server.real_servers[i].command.is_some();
            let key = if own {
                format!("virtual_server.real_server[{i}].command[0]")
            } else {
                "server.command[0]".to_string()
            };
            server_command(file, i).map(|c| (key, c))
        })
        .collect();
    if let Some(c) = &file.client {
        argvs.push(("client.command[0]".into(), c.command.as_slice()));
    }
    let python = find_python();
    let dir = scenario_dir.display().to_string();
    for (key, argv) in argvs {
        let Some(program) = argv.first() else {
            continue;
        };
        if program.contains("{python}") && python.is_none() {
            problems.push(invalid(
                &key,
                "{python} is the project's .venv/bin/python3, and there is none above the \
                 working directory or the lab binary; run `make deps`",
            ));
            continue;
        }
        let py = python
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let program = expand(program, &[("python", py), ("scenario_dir", dir.clone())]);
        if program.contains('{') {
            continue; // a per-server placeholder: checked when it starts.
        }
        if let Err(why) = resolve_program(&program)
            && !problems.iter().any(|p| p.key == key)
        {
            problems.push(invalid(&key, why));
        }
    }
    problems
}

/// The executable `program` names: a path (relative to the working
/// directory) or a name looked up in `PATH`.
pub fn resolve_program(program: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if executable(&p) {
            Ok(p)
        } else if p.exists() {
            Err(format!("{program} is not an executable file"))
        } else {
            let cwd = std::env::current_dir().unwrap_or_default();
            Err(format!(
                "command {program} not found (relative paths resolve against the working directory {})",
                cwd.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| format!("command {program} not found in PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_braces_escape() {
        assert_eq!(placeholders("--port={port}").unwrap(), vec!["port"]);
        assert_eq!(
            placeholders("{{x}} {vip}:{port}").unwrap(),
            vec!["vip", "port"]
        );
        assert!(placeholders("{port").is_err());
        assert!(placeholders("a}b").is_err());
    }

    #[test]
    fn expand_fills_known_names_only() {
        let v = [("port", "8080".to_string()), ("vip", "1.2.3.4".to_string())];
        assert_eq!(expand("{vip}:{port}", &v), "1.2.3.4:8080");
        assert_eq!(expand("{{literal}} {nope}", &v), "{literal} {nope}");
    }

    fn file(extra: &str) -> ScenarioFile {
        let text = format!(
            "description = \"x\"\n[virtual_server]\nvip = \"192.168.122.1\"\nport = 8080\nlb_algo = \"rr\"\n\
             [[virtual_server.real_server]]\naddress = \"172.22.35.1\"\nport = 8080\n\
             [[virtual_server.real_server]]\naddress = \"172.22.35.2\"\nport = 8080\ncommand = [\"own\", \"{{name}}\"]\n{extra}"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn a_real_servers_own_command_overrides_the_shared_one() {
        let f = file("[server]\ncommand = [\"shared\", \"{port}\"]\n");
        assert_eq!(server_command(&f, 0).unwrap()[0], "shared");
        assert_eq!(server_command(&f, 1).unwrap()[0], "own");
        let f = file("");
        assert!(server_command(&f, 0).is_none());
    }

    #[test]
    fn unknown_placeholders_name_their_element() {
        let f = file(
            "[server]\ncommand = [\"x\", \"{prot}\"]\n[client]\ncommand = [\"c\", \"{name}\"]\n",
        );
        let mut problems = Vec::new();
        validate(&f, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["server.command[1]", "client.command[1]"],
            "{problems:?}"
        );
    }

    #[test]
    fn a_missing_program_is_reported_before_anything_runs() {
        let f = file("[server]\ncommand = [\"/nonexistent/ipvslab-server\"]\n");
        let problems = check_programs(&f, Path::new("."));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].key, "server.command[0]");
        assert!(problems[0].message.contains("not found"), "{problems:?}");
        assert_eq!(problems[1].key, "virtual_server.real_server[1].command[0]");
        assert!(resolve_program("sh").is_ok());
    }
}
