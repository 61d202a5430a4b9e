//! `/proc/<pid>/stat`, `/proc/<pid>/status` and `/proc/stat` parsed (pure,
//! but for [`ticks_per_second`]): a process's CPU time in clock ticks, its
//! peak resident set, and the kernel's CPU time by kind (user, system,
//! softirq, idle...), with the differences between two samples; and a
//! network namespace's socket counts from `/proc/net/sockstat`.
//!
//! Why `/proc/stat` and not only the processes: inside User-Mode Linux the
//! guest is one kernel on one CPU, and IPVS works in softirq on packet
//! receive, so the director's cost is in the guest's `softirq` column and
//! in no process at all.

use thiserror::Error;

/// A line that is not what the kernel writes.
#[derive(Debug, Error, PartialEq)]
pub enum ProcStatError {
    /// `/proc/<pid>/stat` without a `(comm)` or with too few fields.
    #[error(
        "/proc/<pid>/stat line {line:?} has no utime/stime after its (comm): \
         expected `pid (comm) state ppid ...` with at least 15 fields"
    )]
    PidStat {
        /// The line read.
        line: String,
    },
    /// `/proc/net/sockstat` without a `TCP: inuse N ... tw N` line.
    #[error("/proc/net/sockstat has no `TCP: inuse N orphan N tw N alloc N` line: read {head:?}")]
    SockStat {
        /// The start of the text read.
        head: String,
    },
    /// `/proc/stat` without an aggregate `cpu` line of at least 4 numbers.
    #[error("/proc/stat has no `cpu user nice system idle ...` line: read {head:?}")]
    SystemStat {
        /// The start of the text read.
        head: String,
    },
}

/// A process's CPU time, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcTimes {
    /// `utime`: user mode.
    pub utime: u64,
    /// `stime`: kernel mode.
    pub stime: u64,
}

impl ProcTimes {
    /// The time from `earlier` to `self` (zero where a counter went back,
    /// e.g. a different process under the same pid).
    pub fn since(&self, earlier: &ProcTimes) -> ProcTimes {
        ProcTimes {
            utime: self.utime.saturating_sub(earlier.utime),
            stime: self.stime.saturating_sub(earlier.stime),
        }
    }
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so the fields
/// are counted from the *last* `)`: `utime` and `stime` are fields 14 and
/// 15 of proc(5), the 12th and 13th after the state.
pub fn parse_pid_stat(line: &str) -> Result<ProcTimes, ProcStatError> {
    let bad = || ProcStatError::PidStat {
        line: line.chars().take(200).collect(),
    };
    let (_, rest) = line.rsplit_once(')').ok_or_else(bad)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3), so field n is fields[n - 3].
    let num = |n: usize| -> Result<u64, ProcStatError> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(bad)
    };
    Ok(ProcTimes {
        utime: num(14)?,
        stime: num(15)?,
    })
}

/// `VmHWM` (peak resident set, KiB) from `/proc/<pid>/status`; `None` when
/// absent (kernel threads, zombies).
pub fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// One `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Normal user mode.
    pub user: u64,
    /// Niced user mode.
    pub nice: u64,
    /// Kernel mode (system calls).
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Idle waiting for I/O.
    pub iowait: u64,
    /// Hard interrupts.
    pub irq: u64,
    /// Soft interrupts: packet receive, hence IPVS.
    pub softirq: u64,
    /// Stolen by the hypervisor.
    pub steal: u64,
}

impl CpuTimes {
    /// Every tick counted, idle included (guest time is already inside
    /// user and nice, so it is not added again).
    pub fn total(&self) -> u64 {
        self.busy() + self.idle + self.iowait
    }

    /// Ticks not idle and not waiting for I/O.
    pub fn busy(&self) -> u64 {
        self.user + self.nice + self.system + self.irq + self.softirq + self.steal
    }

    /// The ticks from `earlier` to `self`, column by column.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    /// Column-by-column sum (rounds added together).
    pub fn plus(&self, o: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user + o.user,
            nice: self.nice + o.nice,
            system: self.system + o.system,
            idle: self.idle + o.idle,
            iowait: self.iowait + o.iowait,
            irq: self.irq + o.irq,
            softirq: self.softirq + o.softirq,
            steal: self.steal + o.steal,
        }
    }
}

/// `/proc/stat`'s CPU lines: the aggregate and each CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemStat {
    /// The `cpu` line: every CPU added up.
    pub all: CpuTimes,
    /// The `cpu0`, `cpu1`, ... lines in order.
    pub per_cpu: Vec<CpuTimes>,
}

/// Parses the `cpu` lines of `/proc/stat`; columns a kernel does not have
/// (old kernels stop after `idle` or `iowait`) read 0.
pub fn parse_system_stat(text: &str) -> Result<SystemStat, ProcStatError> {
    let mut all = None;
    let mut per_cpu = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(index) = name.strip_prefix("cpu") else {
            continue;
        };
        let nums: Vec<u64> = words.map_while(|w| w.parse().ok()).collect();
        if nums.len() < 4 {
            continue;
        }
        let at = |i: usize| nums.get(i).copied().unwrap_or(0);
        let t = CpuTimes {
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
        };
        if index.is_empty() {
            all = Some(t);
        } else if index.parse::<u32>().is_ok() {
            per_cpu.push(t);
        }
    }
    let all = all.ok_or_else(|| ProcStatError::SystemStat {
        head: text.chars().take(120).collect(),
    })?;
    Ok(SystemStat { all, per_cpu })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, `USER_HZ`): the unit of
/// every figure above. 100 where sysconf says nothing useful.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the C library; it takes no
    // pointer and has no side effect.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as u64 } else { 100 }
}

/// A network namespace's TCP sockets, from the `TCP:` line of
/// `/proc/net/sockstat` (per namespace since Linux 4.15). Why it matters
/// here: churn leaves the client's closed connections in TIME_WAIT for
/// 60 s, each holding its (source IP, port) pair, so `time_wait` against
/// the ephemeral port range says how close a run came to EADDRNOTAVAIL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockStat {
    /// Sockets in any state but TIME_WAIT and closed (`inuse`).
    pub in_use: u64,
    /// Sockets no process holds any more (`orphan`).
    pub orphan: u64,
    /// Sockets in TIME_WAIT (`tw`).
    pub time_wait: u64,
}

/// Parses the `TCP:` line of `/proc/net/sockstat`, whose fields come as
/// `name value` pairs (`TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1`).
pub fn parse_sockstat(text: &str) -> Result<SockStat, ProcStatError> {
    let bad = || ProcStatError::SockStat {
        head: text.chars().take(200).collect(),
    };
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .ok_or_else(bad)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| -> Option<u64> {
        words
            .chunks_exact(2)
            .find(|pair| pair[0] == name)
            .and_then(|pair| pair[1].parse().ok())
    };
    Ok(SockStat {
        in_use: field("inuse").ok_or_else(bad)?,
        orphan: field("orphan").unwrap_or(0),
        time_wait: field("tw").ok_or_else(bad)?,
    })
}

/// Parses `/proc/sys/net/ipv4/ip_local_port_range` (`32768\t60999`): the
/// first and last ephemeral port, `None` when it is not two ports in order.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    let (lo, hi) = (it.next()?.ok()?, it.next()?.ok()?);
    (lo <= hi && it.next().is_none()).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lab server's line as Linux 6.x writes it, with a comm that holds
    /// spaces and parentheses (a thread may rename itself so).
    const SERVER: &str = "4242 (lab server (x)) S 4100 4242 4100 0 -1 4194560 2513 0 0 0 \
        1234 567 0 0 20 0 3 0 98765 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17922 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn utime_and_stime_are_read_after_the_last_parenthesis() {
        assert_eq!(
            parse_pid_stat(SERVER).unwrap(),
            ProcTimes {
                utime: 1234,
                stime: 567
            }
        );
        let plain = "17 (loadgen) R 1 17 17 0 -1 0 0 0 0 0 90 10 0 0 20 0 1 0 5 0 0";
        assert_eq!(
            parse_pid_stat(plain).unwrap(),
            ProcTimes {
                utime: 90,
                stime: 10
            }
        );
    }

    #[test]
    fn a_truncated_or_comm_less_line_is_an_error() {
        assert!(parse_pid_stat("4242 (lab) S 1 2 3").is_err());
        assert!(parse_pid_stat("4242 lab S 1 2 3 4 5 6 7 8 9 10 11 12 13").is_err());
        let e = parse_pid_stat("").unwrap_err().to_string();
        assert!(e.contains("at least 15 fields"), "{e}");
    }

    #[test]
    fn process_times_subtract_and_never_go_negative() {
        let a = ProcTimes {
            utime: 10,
            stime: 5,
        };
        let b = ProcTimes {
            utime: 25,
            stime: 6,
        };
        assert_eq!(
            b.since(&a),
            ProcTimes {
                utime: 15,
                stime: 1
            }
        );
        assert_eq!(a.since(&b), ProcTimes::default());
    }

    const STAT: &str = "cpu  4705 150 1120 16250 520 30 210 7 0 0\n\
        cpu0 2355 75 560 8125 260 15 105 3 0 0\n\
        cpu1 2350 75 560 8125 260 15 105 4 0 0\n\
        intr 114930548 113199788 3 0 5 263 0 4 [...]\n\
        ctxt 1990473\nbtime 1062191376\nprocesses 2915\n\
        procs_running 1\nprocs_blocked 0\nsoftirq 183433 0 21755 12 39 1137 231 21459 2263\n";

    #[test]
    fn the_aggregate_and_each_cpu_line_are_read() {
        let s = parse_system_stat(STAT).unwrap();
        assert_eq!(
            s.all,
            CpuTimes {
                user: 4705,
                nice: 150,
                system: 1120,
                idle: 16250,
                iowait: 520,
                irq: 30,
                softirq: 210,
                steal: 7
            }
        );
        assert_eq!(s.per_cpu.len(), 2);
        assert_eq!(s.per_cpu[1].steal, 4);
        assert_eq!(s.all.busy(), 4705 + 150 + 1120 + 30 + 210 + 7);
        assert_eq!(s.all.total(), s.all.busy() + 16250 + 520);
    }

    #[test]
    fn an_old_kernels_short_line_reads_zero_for_missing_columns() {
        let s = parse_system_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!((s.all.idle, s.all.softirq, s.per_cpu.len()), (4, 0, 1));
        assert!(parse_system_stat("intr 1 2 3\n").is_err());
    }

    #[test]
    fn two_samples_give_the_ticks_between_them() {
        let a = parse_system_stat("cpu 100 0 50 1000 0 0 10 0\n")
            .unwrap()
            .all;
        let b = parse_system_stat("cpu 160 0 70 1010 0 0 30 0\n")
            .unwrap()
            .all;
        let d = b.since(&a);
        assert_eq!((d.user, d.system, d.idle, d.softirq), (60, 20, 10, 20));
        assert_eq!((d.busy(), d.total()), (100, 110));
        assert_eq!(d.plus(&d).softirq, 40);
    }

    #[test]
    fn the_peak_resident_set_is_read_from_status() {
        let status = "Name:\tlab\nVmPeak:\t  300000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 18000 kB\n";
        assert_eq!(parse_vm_hwm_kib(status), Some(20480));
        assert_eq!(parse_vm_hwm_kib("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn clock_ticks_are_positive() {
        assert!(ticks_per_second() > 0);
    }

    #[test]
    fn sockstat_gives_the_tcp_line_by_name() {
        let text = "sockets: used 130\nTCP: inuse 12 orphan 1 tw 3051 alloc 14 mem 2\nUDP: inuse 0 mem 0\n";
        let s = parse_sockstat(text).unwrap();
        assert_eq!((s.in_use, s.orphan, s.time_wait), (12, 1, 3051));
        assert!(parse_sockstat("sockets: used 1\nUDP: inuse 0\n").is_err());
        assert!(parse_sockstat("TCP: inuse x tw 1\n").is_err());
    }

    #[test]
    fn the_port_range_is_two_ports_in_order() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("40000 40000"), Some((40000, 40000)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
        assert_eq!(parse_port_range("70000 80000"), None);
    }
}
