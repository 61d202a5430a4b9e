//! keepalived.conf: read a user's file into the lab's model, and write one
//! Debian's keepalived 2.2 runs in the director namespace.
//!
//! Pure apart from [`run`]: no kernel, no processes; the only other I/O is
//! [`parse_file`] reading its path. Layers, each a file:
//! - `lexer`: words, braces, line ends; comments and quotes resolved.
//! - `parse`: the generic statement tree, nesting bounded.
//! - `extract`: the LVS part with keepalived's defaults; the rest reported in
//!   [`KeepalivedConf::ignored`].
//! - [`model`]: the types, and [`model::defaults`] with their sources.
//! - [`render`]: model to keepalived.conf text.
//! - [`run`]: Debian's keepalived started in the director namespace (the one
//!   part with effects).
//!
//! Any input gives `Ok` or `Err`, never a panic: a user's file is untrusted.

mod extract;
mod lexer;
pub mod model;
mod parse;
pub mod render;
pub mod run;

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

pub use model::{
    IgnoreReason, Ignored, KeepalivedConf, LbAlgo, LbKind, Protocol, RealServerConf, TcpCheckConf,
    VirtualServerConf,
};
pub use render::{RenderOptions, render_conf, render_confs};

/// Why a keepalived.conf text was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}")]
pub struct ParseError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What is wrong, naming the token.
    pub message: String,
}

/// Why [`parse_file`] failed.
#[derive(Debug, thiserror::Error)]
pub enum KeepalivedError {
    /// The file could not be read (or is not UTF-8).
    #[error("cannot read keepalived config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a configuration the lab can take.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: ParseError,
    },
}

/// Parses keepalived.conf text.
///
/// `include` lines are reported in [`KeepalivedConf::ignored`], never
/// followed, so the result depends on `text` alone.
pub fn parse_str(text: &str) -> Result<KeepalivedConf, ParseError> {
    let tokens = lexer::lex(text)?;
    let tree = parse::parse_tree(tokens)?;
    extract::extract(&tree)
}

/// Reads and parses the keepalived.conf at `path`.
pub fn parse_file(path: &Path) -> Result<KeepalivedConf, KeepalivedError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeepalivedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text).map_err(|source| KeepalivedError::Parse {
        path: path.to_path_buf(),
        source,
    })
}
