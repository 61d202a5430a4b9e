//! docs/ARCHITECTURE.md stays true: every module it names in backticks
//! (`netns`, `runner::uml`, `scenario` with its `(spec, ...)` list) exists
//! under lab/src, and every file path it names exists in the workspace.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

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
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
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

/// The module order `lab/src/lib.rs` writes in its `# Module order` list.
fn module_order() -> Vec<String> {
    let lib = std::fs::read_to_string(workspace().join("lab/src/lib.rs")).unwrap();
    lib.lines()
        .skip_while(|l| !l.starts_with("//! # Module order"))
        .filter_map(|l| {
            // `//! 4. [`netns`]: ...`
            let item = l.strip_prefix("//! ")?.trim_start();
            let (number, rest) = item.split_once(". [`")?;
            number.parse::<u32>().ok()?;
            Some(rest.split_once('`')?.0.to_string())
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::<module>` names used in the code of `file` (comments left out:
/// a doc link is not a dependency).
fn crate_imports(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
        }
        // `use crate::{a, b::c}`
        if let Some(group) = code.split("crate::{").nth(1) {
            for part in group.split([',', '}']) {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((n + 1, name));
                }
            }
        }
    }
    found
}

#[test]
fn no_module_imports_one_above_it_in_the_lib_rs_order() {
    let order = module_order();
    assert!(
        order.len() >= 10,
        "lib.rs module order not found: {order:?}"
    );
    let src = workspace().join("lab/src");
    for name in &order {
        assert!(
            module_exists(name),
            "lib.rs orders `{name}`, which does not exist"
        );
    }
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let Some(top) = rel.iter().next().and_then(|s| s.to_str()) else {
            continue;
        };
        let module = top.trim_end_matches(".rs");
        // The binary (main.rs and its cli/) sits above the whole library
        // and reaches it as `lab::`, not `crate::`.
        if matches!(module, "main" | "lib" | "cli") {
            continue;
        }
        let own =
            rank(module).unwrap_or_else(|| panic!("lab/src/{top} is not in lib.rs's module order"));
        for (line, used) in crate_imports(file) {
            // Items of the crate root (`crate::error_chain`) are below everything.
            let Some(used_rank) = rank(&used) else {
                continue;
            };
            if used_rank > own {
                upward.push(format!(
                    "lab/src/{}:{line}: `{module}` uses `{used}`",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports pointing up the module order of lab/src/lib.rs:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "use crate::{report, scenario::plan};\n// crate::commands\nfn f() { crate::netns::x(); }\n",
    )
    .unwrap();
    let names: Vec<String> = crate_imports(&file).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["report", "scenario", "netns"]);
}
