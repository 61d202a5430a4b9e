//! Small text helpers shared by the Markdown, terminal and comparison output:
//! one [`Table`] that renders as terminal text (laid out by comfy-table) or
//! as a Markdown table, and the number formats.

use std::collections::BTreeMap;

use super::model::{ClientResult, Report};

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table of strings rendered as aligned plain text or as Markdown.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; the first is left-aligned, the rest right.
    pub(crate) fn new(headers: &[&str]) -> Self {
        let align = (0..headers.len())
            .map(|i| if i == 0 { Align::Left } else { Align::Right })
            .collect();
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            align,
            rows: Vec::new(),
        }
    }

    /// Overrides the alignment of one column.
    pub(crate) fn align(mut self, column: usize, align: Align) -> Self {
        self.align[column] = align;
        self
    }

    /// Adds a row (missing cells are empty).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// True when no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn cell<'a>(&'a self, row: &'a [String], i: usize) -> &'a str {
        row.get(i).map(String::as_str).unwrap_or("")
    }

    /// Aligned plain text through comfy-table: no borders, two spaces
    /// between columns, one dashed rule under the header, trailing spaces
    /// trimmed, every line indented by `indent`. Plain ASCII, so it reads
    /// the same in a terminal, a CI log and a pasted issue.
    pub(crate) fn render_text(&self, indent: &str) -> String {
        let mut t = comfy_table::Table::new();
        // Only the header rule is drawn; a space in a preset means "none".
        t.load_preset("     -             ")
            .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
            .set_header(self.headers.iter().map(String::as_str));
        for row in &self.rows {
            t.add_row((0..self.headers.len()).map(|i| self.cell(row, i)));
        }
        let last = self.headers.len().saturating_sub(1);
        for (i, column) in t.column_iter_mut().enumerate() {
            column.set_padding((0, if i == last { 0 } else { 2 }));
            column.set_cell_alignment(match self.align[i] {
                Align::Left => comfy_table::CellAlignment::Left,
                Align::Right => comfy_table::CellAlignment::Right,
            });
        }
        let mut out = String::new();
        for line in t.lines() {
            out.push_str(indent);
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub(crate) fn render_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = String::from("|");
        for h in &self.headers {
            out.push_str(&format!(" {} |", esc(h)));
        }
        out.push_str("\n|");
        for a in &self.align {
            out.push_str(match a {
                Align::Left => "---|",
                Align::Right => "---:|",
            });
        }
        out.push('\n');
        for row in &self.rows {
            out.push('|');
            for i in 0..self.headers.len() {
                out.push_str(&format!(" {} |", esc(self.cell(row, i))));
            }
            out.push('\n');
        }
        out
    }
}

/// A fraction as a percentage with one decimal: `0.4321` → `43.2%`.
pub(crate) fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A signed difference of fractions in percentage points: `+1.2 pp`.
pub(crate) fn pp(v: f64) -> String {
    format!("{:+.1} pp", v * 100.0)
}

/// Microseconds shown as milliseconds with a precision that suits the size.
pub(crate) fn ms(us: f64) -> String {
    let v = us / 1000.0;
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// A p-value: small ones in scientific notation.
pub(crate) fn p_value(p: f64) -> String {
    if p == 0.0 {
        "< 1e-300".to_owned()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// `p = 0.050`, or `p < 1e-300` when it underflows.
pub(crate) fn p_is(p: f64) -> String {
    let v = p_value(p);
    if v.starts_with('<') {
        format!("p {v}")
    } else {
        format!("p = {v}")
    }
}

/// `name` → `count` as `rs1 120, rs2 80`.
pub(crate) fn servers_seen(c: &ClientResult) -> String {
    c.servers_seen
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the clients saw, summarised: how many reached how many servers, and
/// how many single-server clients each server holds.
pub(crate) struct ClientSpread {
    /// Client IPs in the report.
    pub(crate) clients: usize,
    /// Of those, the ones that reached exactly one server.
    pub(crate) sticky: usize,
    /// Number of servers reached → number of client IPs.
    pub(crate) by_servers_reached: BTreeMap<usize, usize>,
    /// Server name → number of sticky client IPs pinned to it, in report order.
    pub(crate) pinned_to: Vec<(String, usize)>,
}

impl ClientSpread {
    pub(crate) fn of(report: &Report) -> Self {
        let mut by_servers_reached = BTreeMap::new();
        let mut pinned_to: Vec<(String, usize)> =
            report.servers.iter().map(|s| (s.name.clone(), 0)).collect();
        for c in &report.clients {
            let reached: Vec<&String> = c
                .servers_seen
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(s, _)| s)
                .collect();
            *by_servers_reached.entry(reached.len()).or_insert(0) += 1;
            if !c.sticky {
                continue;
            }
            if let Some(slot) = reached
                .first()
                .and_then(|server| pinned_to.iter_mut().find(|(n, _)| n == *server))
            {
                slot.1 += 1;
            }
        }
        Self {
            clients: report.clients.len(),
            sticky: report.clients.iter().filter(|c| c.sticky).count(),
            by_servers_reached,
            pinned_to,
        }
    }

    /// `"42 reached 1 server, 22 reached 3 servers"`.
    pub(crate) fn reached_text(&self) -> String {
        self.by_servers_reached
            .iter()
            .map(|(k, v)| format!("{v} reached {k} server{}", if *k == 1 { "" } else { "s" }))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `"rs1 11, rs2 11, rs3 20"`.
    pub(crate) fn pinned_text(&self) -> String {
        self.pinned_to
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_table_aligns_columns() {
        let mut t = Table::new(&["server", "RPCs", "share"]);
        t.row(vec!["rs1".into(), "5".into(), "50.0%".into()]);
        t.row(vec!["rs-long".into(), "12345".into(), "5.0%".into()]);
        let text = t.render_text("  ");
        assert_eq!(
            text,
            "  server    RPCs  share\n  ---------------------\n  rs1          5  50.0%\n  rs-long  12345   5.0%\n"
        );
    }

    #[test]
    fn text_table_fills_missing_cells_and_honours_alignment() {
        let mut t = Table::new(&["", "expectation", "measured"])
            .align(1, Align::Left)
            .align(2, Align::Left);
        t.row(vec!["PASS".into(), "sticky = true".into(), "1 of 1".into()]);
        t.row(vec!["FAIL".into(), "errors == 0".into()]);
        assert_eq!(
            t.render_text(""),
            "      expectation    measured\n\
             -----------------------------\n\
             PASS  sticky = true  1 of 1\n\
             FAIL  errors == 0\n"
        );
    }

    #[test]
    fn text_table_measures_wide_characters_by_their_width() {
        // Two columns wide each: a count of chars would misalign the rule.
        let mut t = Table::new(&["name", "n"]);
        t.row(vec!["日本".into(), "1".into()]);
        assert_eq!(t.render_text(""), "name  n\n-------\n日本  1\n");
    }

    #[test]
    fn markdown_table_escapes_pipes() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["x|y".into(), "1".into()]);
        assert_eq!(
            t.render_markdown(),
            "| a | b |\n|---|---:|\n| x\\|y | 1 |\n"
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(pct(0.4321), "43.2%");
        assert_eq!(pp(-0.012), "-1.2 pp");
        assert_eq!(ms(250.0), "0.250 ms");
        assert_eq!(ms(12_345.0), "12.35 ms");
        assert_eq!(p_value(0.05), "0.050");
        assert_eq!(p_value(1e-12), "1.0e-12");
    }
}
