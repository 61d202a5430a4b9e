//! `--proto FILE`: compiled at start with protox (no `protoc`), with the
//! file, line and column of the first problem when it does not compile.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost_reflect::DescriptorPool;

use super::MethodError;

/// Compiles `files` (with their imports) into a descriptor pool. Imports
/// are looked up in `import_paths`, or, when none is given, in each file's
/// own directory (as `protoc -I$(dirname FILE)` would).
pub fn compile(files: &[PathBuf], import_paths: &[PathBuf]) -> Result<DescriptorPool, MethodError> {
    let includes: Vec<PathBuf> = if import_paths.is_empty() {
        let mut dirs: Vec<PathBuf> = files.iter().map(|f| parent_dir(f)).collect();
        dirs.dedup();
        dirs
    } else {
        import_paths.to_vec()
    };
    let mut compiler = protox::Compiler::new(&includes).map_err(|e| proto_error(&e, None))?;
    compiler.include_imports(true);
    for file in files {
        compiler
            .open_file(file)
            .map_err(|e| proto_error(&e, Some(file)))?;
    }
    Ok(compiler.descriptor_pool())
}

fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// protox's error with its location: `file:line:column` from the
/// diagnostic's first label when it has one, else the file it names (or
/// the one being opened).
fn proto_error(e: &protox::Error, opening: Option<&Path>) -> MethodError {
    let file = e
        .file()
        .map(str::to_string)
        .or_else(|| opening.map(|p| p.display().to_string()))
        .unwrap_or_else(|| "<import paths>".to_string());
    let location = line_column(e)
        .map(|(name, line, column)| format!("{}:{line}:{column}", name.unwrap_or(file.clone())))
        .unwrap_or(file);
    MethodError::Proto {
        location,
        message: e.to_string(),
    }
}

/// The (file name, 1-based line, 1-based column) of the diagnostic's first
/// labelled span.
fn line_column(e: &protox::Error) -> Option<(Option<String>, usize, usize)> {
    let label = e.labels()?.next()?;
    let source = e.source_code()?;
    let span = source.read_span(label.inner(), 0, 0).ok()?;
    Some((
        span.name().map(str::to_string),
        span.line() + 1,
        span.column() + 1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_text(text: &str) -> Result<DescriptorPool, MethodError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.proto");
        std::fs::write(&file, text).unwrap();
        compile(&[file], &[])
    }

    #[test]
    fn a_syntax_error_has_file_line_and_column() {
        let text = "syntax = \"proto3\";\npackage p;\nmessage M {\n  string name = ;\n}\n";
        let e = compile_text(text).unwrap_err();
        let MethodError::Proto { location, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(location.starts_with("bad.proto:4:"), "{e}");
        assert_eq!(e.exit_code(), 65);
    }

    #[test]
    fn an_unknown_type_has_its_line() {
        let text = "syntax = \"proto3\";\npackage p;\nmessage M {\n  Missing m = 1;\n}\n";
        let e = compile_text(text).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("bad.proto:4:"), "{text}");
        assert!(text.contains("Missing"), "{text}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = compile(&[PathBuf::from("/nonexistent/x.proto")], &[]).unwrap_err();
        assert!(e.to_string().contains("x.proto"), "{e}");
    }

    #[test]
    fn the_demo_proto_compiles() {
        let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../grpc-demo/proto/demo.proto");
        let pool = compile(&[proto], &[]).unwrap();
        assert!(pool.get_service_by_name("ipvslab.demo.v1.Demo").is_some());
    }
}
