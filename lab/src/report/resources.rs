//! The `resources` section: CPU time of the load generator, of the servers
//! and of the kernel (the director's softirq share) over the measured
//! rounds, peak memory, and the rule that says when the throughput figure
//! measures the lab rather than IPVS.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// At or above this share of one CPU the load generator is the bottleneck.
pub const LOADGEN_SATURATED_SHARE: f64 = 0.90;
/// Below this idle share the kernel (one CPU under UML) is the bottleneck.
pub const GUEST_IDLE_MIN_SHARE: f64 = 0.05;

/// What the measured rounds cost, summed over the rounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// The load generator's own `getrusage` over its measured phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen: Option<ProcessCpu>,
    /// Each real server (`/proc/<pid>/stat` sampled at the start and end of
    /// each measured phase; a server restarted mid-round is left out of
    /// that round).
    #[serde(default)]
    pub servers: Vec<ProcessCpu>,
    /// The kernel's `/proc/stat` over the same windows: under UML, the
    /// guest, whose softirq share is the director's IPVS work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelCpu>,
    /// Server CPU (user + sys, all servers) per measured RPC, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers_cpu_us_per_rpc: Option<f64>,
    /// Peak RSS of the lab process that assembled the report (under UML the
    /// lab inside the guest), KiB.
    #[serde(default)]
    pub lab_max_rss_kib: u64,
    /// The largest tables the run built: IPVS entries in the director,
    /// TCP sockets and TIME_WAIT in the client namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<TablePeaks>,
}

/// The largest kernel tables of the run, from the samples taken about once
/// a second while the load ran (a peak between two samples is missed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TablePeaks {
    /// Entries in the director's IPVS connection table at once:
    /// connections (active + inactive) plus persistence templates.
    pub ipvs_entries: u64,
    /// Client-namespace sockets in TIME_WAIT at once (`tw` of
    /// `/proc/net/sockstat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time_wait: Option<u64>,
    /// Client-namespace TCP sockets in use at once (`inuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_in_use: Option<u64>,
    /// The client namespace's ephemeral port range, first and last port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_port_range: Option<[u16; 2]>,
    /// Client IPs the ports are spread over.
    #[serde(default)]
    pub client_ips: u32,
}

impl TablePeaks {
    /// Source (IP, port) pairs the clients can bind toward one VIP:port.
    pub fn ephemeral_ports(&self) -> Option<u64> {
        self.client_port_range
            .map(|[lo, hi]| (u64::from(hi) - u64::from(lo) + 1) * u64::from(self.client_ips))
    }

    /// Peak sockets holding a source port (in use + TIME_WAIT) as a share
    /// of [`Self::ephemeral_ports`]: near 1.0 the next connect fails with
    /// EADDRNOTAVAIL.
    pub fn port_share(&self) -> Option<f64> {
        let held = self.client_in_use? + self.client_time_wait?;
        let ports = self.ephemeral_ports().filter(|&p| p > 0)?;
        Some(held as f64 / ports as f64)
    }
}

/// One process's CPU over the measured phases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpu {
    /// `loadgen`, or the server's name.
    pub name: String,
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Wall-clock seconds the figures cover.
    pub wall_s: f64,
    /// `(user_s + sys_s) / wall_s`: 1.0 is one CPU kept busy.
    pub cpu_share: f64,
    /// CPU (user + sys) per measured RPC, µs (loadgen: its own RPCs;
    /// a server: every RPC of the run, as its share of the whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_rpc: Option<f64>,
    /// Peak resident set, KiB (loadgen's `ru_maxrss`, a server's `VmHWM`).
    #[serde(default)]
    pub max_rss_kib: u64,
}

/// The kernel's CPU time by kind over the measured phases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelCpu {
    /// CPUs in `/proc/stat` (1 under UML).
    pub cpus: usize,
    /// Seconds covered (ticks over CPUs).
    pub wall_s: f64,
    /// Not idle, not iowait.
    pub busy_share: f64,
    /// Idle (with iowait).
    pub idle_share: f64,
    /// Softirq: packet receive, where IPVS runs.
    pub softirq_share: f64,
    /// System calls and other kernel work.
    pub system_share: f64,
    /// User mode (loadgen, servers, the lab). 0 under UML, whose guest
    /// books its processes' user time as system: there only user + sys is
    /// meaningful, for the processes too.
    pub user_share: f64,
}

/// The warning when the throughput figure measures the lab and not IPVS:
/// loadgen at or above [`LOADGEN_SATURATED_SHARE`] of a CPU, or the kernel
/// idle less than [`GUEST_IDLE_MIN_SHARE`] of the time. A note, never a
/// failed expectation.
pub fn saturation_warning(r: &Resources) -> Option<String> {
    let loadgen = r
        .loadgen
        .as_ref()
        .map(|l| l.cpu_share)
        .filter(|s| *s >= LOADGEN_SATURATED_SHARE);
    let idle = r
        .kernel
        .as_ref()
        .map(|k| k.idle_share)
        .filter(|s| *s < GUEST_IDLE_MIN_SHARE);
    let why = match (loadgen, idle) {
        (None, None) => return None,
        (Some(l), None) => format!("loadgen at {:.0}% of a CPU", l * 100.0),
        (None, Some(i)) => format!("kernel idle {:.1}% of the time", i * 100.0),
        (Some(l), Some(i)) => format!(
            "loadgen at {:.0}% of a CPU, kernel idle {:.1}% of the time",
            l * 100.0,
            i * 100.0
        ),
    };
    Some(format!("throughput measures the lab ({why}), not IPVS"))
}

/// The `## CPU and memory` section of report.md (nothing when unmeasured).
pub fn markdown_section(md: &mut String, r: &Resources) {
    if r.loadgen.is_none() && r.servers.is_empty() && r.kernel.is_none() {
        return;
    }
    md.push_str("## CPU and memory\n\n");
    if let Some(w) = saturation_warning(r) {
        let _ = writeln!(md, "**Warning:** {w}.\n");
    }
    md.push_str("| process | user s | sys s | share of a CPU | CPU µs/RPC | peak RSS |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|\n");
    for p in r.loadgen.iter().chain(&r.servers) {
        let per_rpc = p
            .cpu_us_per_rpc
            .map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.2} | {:.0}% | {per_rpc} | {} |",
            p.name,
            p.user_s,
            p.sys_s,
            p.cpu_share * 100.0,
            mib(p.max_rss_kib),
        );
    }
    md.push('\n');
    if let Some(k) = &r.kernel {
        let _ = writeln!(
            md,
            "Kernel (`/proc/stat`, {} CPU{}, {:.1} s): busy {:.0}%, idle {:.0}%, \
             softirq (IPVS and packet receive) {:.1}%, system {:.0}%, user {:.0}%.\n",
            k.cpus,
            if k.cpus == 1 { "" } else { "s" },
            k.wall_s,
            k.busy_share * 100.0,
            k.idle_share * 100.0,
            k.softirq_share * 100.0,
            k.system_share * 100.0,
            k.user_share * 100.0,
        );
        if k.user_share == 0.0 && k.system_share > 0.0 {
            md.push_str(
                "No user time at all: this kernel (UML) books its processes' user time as \
                 system, so only user + sys is meaningful, in the table too.\n\n",
            );
        }
    }
    if let Some(v) = r.servers_cpu_us_per_rpc {
        let _ = writeln!(md, "Servers together: {v:.1} CPU µs per RPC.\n");
    }
    if r.lab_max_rss_kib > 0 {
        let _ = writeln!(
            md,
            "The lab process's own peak RSS: {}.\n",
            mib(r.lab_max_rss_kib)
        );
    }
    if let Some(t) = &r.tables {
        render_tables(md, t);
    }
}

fn render_tables(md: &mut String, t: &TablePeaks) {
    let _ = write!(
        md,
        "Largest tables (sampled once a second): {} IPVS entries in the director",
        t.ipvs_entries
    );
    if let (Some(tw), Some(inuse)) = (t.client_time_wait, t.client_in_use) {
        let _ = write!(
            md,
            "; in the client namespace {inuse} TCP sockets in use and {tw} in TIME_WAIT"
        );
    }
    if let (Some([lo, hi]), Some(ports)) = (t.client_port_range, t.ephemeral_ports()) {
        let _ = write!(
            md,
            ", against {ports} ephemeral (IP, port) pairs (ports {lo}-{hi} on {} client IPs",
            t.client_ips
        );
        if let Some(share) = t.port_share() {
            let _ = write!(md, ", {:.1}% held at the peak", share * 100.0);
        }
        md.push(')');
    }
    md.push_str(".\n\n");
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        "-".to_string()
    } else {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(loadgen_share: Option<f64>, idle: Option<f64>) -> Resources {
        Resources {
            loadgen: loadgen_share.map(|s| ProcessCpu {
                name: "loadgen".into(),
                cpu_share: s,
                ..Default::default()
            }),
            kernel: idle.map(|i| KernelCpu {
                cpus: 1,
                idle_share: i,
                busy_share: 1.0 - i,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn loadgen_at_ninety_percent_of_a_cpu_is_saturated_and_below_is_not() {
        let w = saturation_warning(&with(Some(0.97), Some(0.5))).unwrap();
        assert_eq!(
            w,
            "throughput measures the lab (loadgen at 97% of a CPU), not IPVS"
        );
        assert!(saturation_warning(&with(Some(0.90), None)).is_some());
        assert_eq!(saturation_warning(&with(Some(0.89), Some(0.5))), None);
    }

    #[test]
    fn a_kernel_idle_under_five_percent_is_saturated_and_at_five_is_not() {
        let w = saturation_warning(&with(Some(0.5), Some(0.02))).unwrap();
        assert!(w.contains("kernel idle 2.0% of the time"), "{w}");
        assert_eq!(saturation_warning(&with(Some(0.5), Some(0.05))), None);
        let both = saturation_warning(&with(Some(0.95), Some(0.01))).unwrap();
        assert!(both.contains("loadgen at 95%") && both.contains("idle 1.0%"));
    }

    #[test]
    fn nothing_measured_warns_nothing_and_renders_nothing() {
        let r = Resources::default();
        assert_eq!(saturation_warning(&r), None);
        let mut md = String::new();
        markdown_section(&mut md, &r);
        assert!(md.is_empty());
    }

    #[test]
    fn the_markdown_table_has_a_row_per_process_and_the_kernel_line() {
        let mut r = with(Some(0.97), Some(0.01));
        r.servers.push(ProcessCpu {
            name: "rs1".into(),
            user_s: 1.5,
            sys_s: 0.25,
            wall_s: 10.0,
            cpu_share: 0.175,
            cpu_us_per_rpc: Some(12.34),
            max_rss_kib: 20480,
        });
        r.lab_max_rss_kib = 10240;
        let mut md = String::new();
        markdown_section(&mut md, &r);
        assert!(
            md.contains("**Warning:** throughput measures the lab"),
            "{md}"
        );
        assert!(
            md.contains("| rs1 | 1.50 | 0.25 | 18% | 12.3 | 20.0 MiB |"),
            "{md}"
        );
        assert!(
            md.contains("| loadgen | 0.00 | 0.00 | 97% | - | - |"),
            "{md}"
        );
        assert!(md.contains("idle 1%"), "{md}");
        assert!(!md.contains("No user time"), "{md}");
        r.kernel.as_mut().unwrap().system_share = 0.9;
        let mut uml = String::new();
        markdown_section(&mut uml, &r);
        assert!(uml.contains("No user time at all"), "{uml}");
        assert!(md.contains("peak RSS: 10.0 MiB"), "{md}");
    }
}
