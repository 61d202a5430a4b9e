//! Which real server each connection (and so each RPC) went to, and how
//! the lab knows: from the server's own identity in its replies (the demo
//! server), from the director's IPVS connection table, or from both,
//! compared connection for connection. Model and rendering; the join is
//! `scenario::attribution`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Most example 4-tuples kept per kind (mismatches, unseen connections).
pub const MAX_EXAMPLES: usize = 8;

/// Where the per-server attribution came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionMethod {
    /// The servers' identity in their replies; the table was not usable.
    #[default]
    ServerIdentity,
    /// The kernel's connection table alone: the replies carry no identity.
    KernelTable,
    /// Both, and they agree for every connection both saw.
    BothAgree,
    /// Both, and they disagree for at least one connection.
    BothDisagree,
}

impl AttributionMethod {
    /// The JSON name (`both_agree`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionMethod::ServerIdentity => "server_identity",
            AttributionMethod::KernelTable => "kernel_table",
            AttributionMethod::BothAgree => "both_agree",
            AttributionMethod::BothDisagree => "both_disagree",
        }
    }
}

/// One server's connections and RPCs as the kernel table attributes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Load-generator connections the table put on this server.
    pub connections: u64,
    /// Their successful RPCs.
    pub rpcs: u64,
    /// Every connection from a client address the table showed on this
    /// server (those without a measured RPC included).
    pub table_connections: u64,
}

/// A connection the two attributions disagree on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The client end, `address:port`.
    pub client: String,
    /// The server that answered, by its own identity.
    pub server_says: String,
    /// The server the connection table names.
    pub table_says: String,
}

/// The server side's view, read from each real server's `/proc/net/tcp`
/// (established peers on the service port), against the table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSideCheck {
    /// Table connections from client addresses that were checked.
    pub checked: u64,
    /// Seen established on the server the table names.
    pub confirmed: u64,
    /// Seen on no server (opened and closed between two samples).
    pub not_seen: u64,
    /// Seen on another server at the same time: a contradiction.
    pub elsewhere: u64,
    /// The first connections seen elsewhere (`client on rsX, table says rsY`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elsewhere_examples: Vec<String>,
}

/// Per scenario: how RPCs and connections were attributed to servers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Which attribution the per-server counts use.
    pub method: AttributionMethod,
    /// Connections the load generator recorded (with a measured RPC).
    pub connections: u64,
    /// Of those, the ones whose replies named a server.
    pub with_identity: u64,
    /// The table named a server for them (one life in the connection's round).
    pub in_table: u64,
    /// Both named a server, the same one.
    pub agree: u64,
    /// Both named a server, different ones.
    pub disagree: u64,
    /// The table never showed the connection (opened and expired between
    /// samples): counted, never guessed.
    pub unseen: u64,
    /// The table showed the 4-tuple on more than one server in the
    /// connection's round (a reused port): not attributed.
    pub ambiguous: u64,
    /// RPCs on connections the table could not attribute.
    pub unattributed_rpcs: u64,
    /// Per server name, from the table.
    pub per_server: BTreeMap<String, TableCounts>,
    /// The first disagreements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// The first unseen connections, `address:port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unseen_examples: Vec<String>,
    /// Connection-table samples folded in.
    pub table_samples: u32,
    /// Connection entries (lives) the table showed, over the run.
    pub table_connections: u64,
    /// Persistence templates (lives) the table showed, over the run.
    pub table_templates: u64,
    /// The server side's view, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side: Option<ServerSideCheck>,
}

impl Attribution {
    /// One sentence: which attribution, and how many connections agreed.
    pub fn headline(&self) -> String {
        let mut s = match self.method {
            AttributionMethod::ServerIdentity => format!(
                "server identity in the replies ({} connections); the connection table could not be used",
                self.connections
            ),
            AttributionMethod::KernelTable if self.connections == 0 => format!(
                "kernel connection table alone: no load-generator connections to join; the table showed {} connections and {} persistence templates",
                self.table_connections, self.table_templates
            ),
            AttributionMethod::KernelTable => format!(
                "kernel connection table: the replies name no server; {} of {} connections found in /proc/net/ip_vs_conn",
                self.in_table, self.connections
            ),
            AttributionMethod::BothAgree => format!(
                "server identity and kernel connection table agree for all {} connections both saw (of {})",
                self.agree, self.connections
            ),
            AttributionMethod::BothDisagree => format!(
                "server identity and kernel connection table DISAGREE on {} of {} connections",
                self.disagree,
                self.agree + self.disagree
            ),
        };
        if self.unseen > 0 || self.ambiguous > 0 {
            let _ = write!(
                s,
                "; {} never seen by the table, {} ambiguous (reused port), {} RPCs unattributed",
                self.unseen, self.ambiguous, self.unattributed_rpcs
            );
        }
        s
    }

    /// The server-side cross-check as a sentence, if it was read.
    pub fn server_side_sentence(&self) -> Option<String> {
        let c = self.server_side.as_ref()?;
        let mut s = format!(
            "each real server's own /proc/net/tcp showed {} of {} table connections established on the server the table names, {} on no server (closed between samples), {} on another server",
            c.confirmed, c.checked, c.not_seen, c.elsewhere
        );
        if !c.elsewhere_examples.is_empty() {
            let _ = write!(s, " ({})", c.elsewhere_examples.join("; "));
        }
        Some(s)
    }

    /// The first mismatches, `client: server says X, table says Y; ...`.
    pub fn mismatch_text(&self) -> String {
        self.mismatches
            .iter()
            .map(|m| {
                format!(
                    "{}: server says {}, table says {}",
                    m.client, m.server_says, m.table_says
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The `## Attribution` section of `report.md`.
pub fn markdown_section(md: &mut String, a: &Attribution) {
    md.push_str("## Attribution\n\n");
    let _ = writeln!(
        md,
        "`attribution = \"{}\"`: {}.\n",
        a.method.as_str(),
        a.headline()
    );
    md.push_str("| server | connections (table) | RPCs (table) | all table connections |\n");
    md.push_str("|---|---:|---:|---:|\n");
    for (name, c) in &a.per_server {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} |",
            c.connections, c.rpcs, c.table_connections
        );
    }
    let _ = writeln!(
        md,
        "\n{} table samples showed {} connection entries and {} persistence templates over the run.",
        a.table_samples, a.table_connections, a.table_templates
    );
    if let Some(s) = a.server_side_sentence() {
        let _ = writeln!(md, "Cross-check: {s}.");
    }
    if !a.mismatches.is_empty() {
        let _ = writeln!(md, "\nDisagreements: {}.", a.mismatch_text());
    }
    if !a.unseen_examples.is_empty() {
        let _ = writeln!(
            md,
            "\nNever seen by the table: {}.",
            a.unseen_examples.join(", ")
        );
    }
    md.push('\n');
}

/// The lines of the terminal summary.
pub fn summary_lines(a: &Attribution) -> Vec<String> {
    let mut out = vec![format!(
        "Attribution: {} ({})",
        a.method.as_str(),
        a.headline()
    )];
    if let Some(s) = a.server_side_sentence() {
        out.push(format!("Attribution cross-check: {s}"));
    }
    if !a.mismatches.is_empty() {
        out.push(format!("Attribution disagreements: {}", a.mismatch_text()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Attribution {
        Attribution {
            method: AttributionMethod::BothDisagree,
            connections: 4,
            with_identity: 4,
            in_table: 4,
            agree: 3,
            disagree: 1,
            per_server: BTreeMap::from([(
                "rs1".to_owned(),
                TableCounts {
                    connections: 4,
                    rpcs: 40,
                    table_connections: 5,
                },
            )]),
            mismatches: vec![Mismatch {
                client: "172.22.35.100:40000".into(),
                server_says: "rs2".into(),
                table_says: "rs1".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn renders_method_counts_and_mismatches() {
        let a = sample();
        let mut md = String::new();
        markdown_section(&mut md, &a);
        assert!(md.contains("`attribution = \"both_disagree\"`"), "{md}");
        assert!(md.contains("DISAGREE on 1 of 4"), "{md}");
        assert!(md.contains("| rs1 | 4 | 40 | 5 |"), "{md}");
        assert!(md.contains("172.22.35.100:40000: server says rs2, table says rs1"));
        let lines = summary_lines(&a);
        assert!(lines[0].starts_with("Attribution: both_disagree"));
        assert_eq!(lines.len(), 2);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["method"], "both_disagree");
        let alone = Attribution {
            method: AttributionMethod::KernelTable,
            table_connections: 12,
            ..Default::default()
        };
        assert!(alone.headline().contains("the table showed 12 connections"));
    }
}
