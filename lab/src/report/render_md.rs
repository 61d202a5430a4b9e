//! `report.md`: the document a person reads.

use super::model::Report;

/// Renders `report.md`.
pub fn render_markdown(report: &Report) -> String {
    format!("# {}\n", report.scenario.name)
}
