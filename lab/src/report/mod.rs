//! report: the JSON model, Markdown and SVG rendering, baseline comparison.

pub mod fairness;
pub mod model;

pub use model::*;
pub mod error;
pub mod hgrm;

pub use error::ReportError;
