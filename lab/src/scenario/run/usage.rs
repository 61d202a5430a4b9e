//! CPU samples around each round's measured phase: `/proc/stat` (the
//! kernel: under UML the whole guest, whose softirq column is IPVS) and
//! each server's `/proc/<pid>/stat`, at the start of the measured phase
//! and at its end. The load generator reports its own CPU (`getrusage`).

use std::time::Instant;

use super::measurements::RoundUsage;
use crate::process::ChildGuard;
use crate::procstat::{ProcTimes, SystemStat, parse_pid_stat, parse_system_stat, parse_vm_hwm_kib};

/// One look at the kernel and the servers.
pub(super) struct Sample {
    at: Instant,
    kernel: Option<SystemStat>,
    /// Per planned server: its pid and times when it runs.
    servers: Vec<Option<(u32, ProcTimes)>>,
}

/// Reads `/proc/stat` and each running server's `/proc/<pid>/stat`; what
/// cannot be read is left out (a server restarting, a `/proc` without it).
pub(super) fn sample(servers: &[Option<ChildGuard>]) -> Sample {
    let kernel = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_system_stat(&t).ok());
    let servers = servers
        .iter()
        .map(|g| {
            let pid = g.as_ref()?.pid()?;
            let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_pid_stat(&line).ok()?))
        })
        .collect();
    Sample {
        at: Instant::now(),
        kernel,
        servers,
    }
}

/// What one round's measured phase cost, from its two samples; a server
/// whose pid changed in between (restarted by a phase) is left out.
pub(super) fn between(start: &Sample, end: &Sample, ticks_per_s: u64) -> RoundUsage {
    let tick = 1.0 / ticks_per_s.max(1) as f64;
    let servers = start
        .servers
        .iter()
        .zip(&end.servers)
        .map(|(a, b)| match (a, b) {
            (Some((pa, ta)), Some((pb, tb))) if pa == pb => {
                let d = tb.since(ta);
                let hwm = std::fs::read_to_string(format!("/proc/{pb}/status"))
                    .ok()
                    .and_then(|s| parse_vm_hwm_kib(&s))
                    .unwrap_or(0);
                Some((d.utime as f64 * tick, d.stime as f64 * tick, hwm))
            }
            _ => None,
        })
        .collect();
    let kernel = match (&start.kernel, &end.kernel) {
        (Some(a), Some(b)) => Some((b.all.since(&a.all), b.per_cpu.len().max(1))),
        _ => None,
    };
    RoundUsage {
        wall_s: end.at.saturating_duration_since(start.at).as_secs_f64(),
        ticks_per_s,
        kernel,
        servers,
    }
}
