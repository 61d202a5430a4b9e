//! docs/ARCHITECTURE.md stays true: every module it names in backticks
//! (`netns`, `runner::uml`, `scenario` with its `(spec, ...)` list) exists
//! under lab/src, and every file path it names exists in the workspace.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A module path such as `runner::uml` as a file or folder under lab/src.
fn module_exists(path: &str) -> bool {
    let src = workspace().join("lab/src");
    let rel: PathBuf = path.split("::").collect();
    src.join(&rel).with_extension("rs").is_file() || src.join(&rel).join("mod.rs").is_file()
}

#[test]
fn every_module_in_the_layer_table_exists() {
    let doc = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("## Module order"))
        .take_while(|l| !l.starts_with("Known upward edges"))
        .filter(|l| l.starts_with("| ") && l.contains('`'))
        .collect();
    assert!(table.len() >= 5, "the layer table is missing: {table:?}");
    let mut checked = 0;
    for row in table {
        let modules = row.split('|').nth(2).unwrap_or("");
        // `runner` (`kernel`, `uml`): the parenthesised names are its children.
        let (parent, children) = match modules.split_once('(') {
            Some((p, c)) => (p, c.trim_end_matches([')', ' '])),
            None => (modules, ""),
        };
        let parents: Vec<&str> = parent.split('`').skip(1).step_by(2).collect();
        for name in &parents {
            assert!(
                module_exists(name)
                    || *name == "main.rs" && workspace().join("lab/src/main.rs").is_file(),
                "docs/ARCHITECTURE.md names module `{name}`, which lab/src does not have"
            );
            checked += 1;
        }
        for child in children.split('`').skip(1).step_by(2) {
            let path = format!("{}::{child}", parents.last().unwrap());
            assert!(
                module_exists(&path),
                "docs/ARCHITECTURE.md names `{path}`, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} modules checked");
}

#[test]
fn every_qualified_name_in_the_text_exists() {
    let doc = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    for quoted in doc.split('`').skip(1).step_by(2) {
        // `bringup::LabNetwork::up`: the module part must exist.
        if quoted.contains("::") && !quoted.contains(' ') {
            let modules: Vec<&str> = quoted
                .split("::")
                .take_while(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .collect();
            // Trailing lowercase segments may be functions: accept the
            // longest prefix that is a module.
            let found = (1..=modules.len())
                .rev()
                .any(|n| module_exists(&modules[..n].join("::")));
            assert!(
                found,
                "docs/ARCHITECTURE.md names `{quoted}`, whose module does not exist"
            );
        }
        if quoted.starts_with("scripts/") || quoted.starts_with("lab/tests/") {
            assert!(
                workspace().join(quoted).exists(),
                "`{quoted}` does not exist"
            );
        }
    }
}
