//! Why a UML guest died: known causes read from the kernel's console log.
//!
//! The guest's kernel messages go to a console of their own, kept as
//! `console.log` in the run directory (the job's stdout and stderr stay
//! clean). When the guest stops without reporting the job's exit status, the
//! runner shows the log's last lines and, where a known cause matches, names
//! it with its fix. Pure text in, text out: unit-tested on captured logs.

use std::fmt;

/// How many console lines an error shows.
pub const TAIL_LINES: usize = 20;

/// A known reason for a guest that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The host's XSAVE area (Intel AMX) is larger than this UML kernel can
    /// hand to `PTRACE_SETREGSET`; every Debian UML before 7.x fails so.
    XsaveTooLarge,
    /// The guest ran out of memory.
    OutOfMemory,
    /// The kernel could not start its init (the lab binary).
    NoInit,
    /// The kernel panicked for another reason (the panic line).
    Panic(String),
    /// The binary printed nothing a kernel would: probably not a UML kernel.
    Silent,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::XsaveTooLarge => f.write_str(
                "this CPU's XSAVE state (AMX) is larger than this UML kernel supports \
                 (`ptrace set fp regs failed, errno = 14`); `make deps` builds one that works \
                 (scripts/build-uml-kernel.sh), or set IPVSLAB_UML_KERNEL to a UML kernel of 7.x or later",
            ),
            Cause::OutOfMemory => f.write_str(
                "the guest ran out of memory; the lab gives it 384 MiB, so a scenario this large \
                 needs fewer client IPs or channels",
            ),
            Cause::NoInit => f.write_str(
                "the kernel could not start the lab binary as its init; it must be visible through \
                 hostfs at the same path (not under a private mount) and executable",
            ),
            Cause::Panic(line) => write!(
                f,
                "the guest kernel panicked ({line}); the console lines below say why"
            ),
            Cause::Silent => f.write_str(
                "the kernel printed no console output at all: the file may not be a User-Mode Linux \
                 kernel; point IPVSLAB_UML_KERNEL at one, or unset it to use the lab's own (`make deps`)",
            ),
        }
    }
}

/// The first known cause found in a console log, most specific first.
pub fn diagnose(log: &str) -> Option<Cause> {
    let has = |needle: &str| log.lines().any(|l| l.contains(needle));
    if has("ptrace set fp regs failed") {
        return Some(Cause::XsaveTooLarge);
    }
    if has("Out of memory") || has("oom-kill") {
        return Some(Cause::OutOfMemory);
    }
    if has("No working init found") || has("Requested init") || has("Failed to execute") {
        return Some(Cause::NoInit);
    }
    if let Some(line) = log.lines().find(|l| l.contains("Kernel panic")) {
        return Some(Cause::Panic(clean(line).to_owned()));
    }
    if log.trim().is_empty() {
        return Some(Cause::Silent);
    }
    None
}

/// Where a known cause shows in a log, most specific first.
const MARKERS: &[&str] = &[
    "ptrace set fp regs failed",
    "Out of memory",
    "oom-kill",
    "No working init found",
    "Requested init",
    "Failed to execute",
    "Kernel panic",
];

/// The `n` console lines worth showing, CRs and stamps stripped: from just
/// before the first line that names a known cause (a panic's stack trace
/// would otherwise push it out), else the last `n`.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(clean)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let marked = MARKERS
        .iter()
        .find_map(|m| lines.iter().position(|l| l.contains(m)));
    let start = match marked {
        Some(i) => i.saturating_sub(2),
        None => lines.len().saturating_sub(n),
    };
    lines[start..lines.len().min(start + n)].join("\n")
}

/// A console line without its CR and its `[    0.123456] ` stamp.
fn clean(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((stamp, rest)) if stamp.trim().parse::<f64>().is_ok() => rest,
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines 88-101 of the console log of Debian bookworm's linux.uml 6.1.176
    /// booted on an Intel Xeon with AMX (`console=tty2 quiet loglevel=7`).
    const AMX_PANIC: &str = "\
Btrfs loaded, crc32c=crc32c-generic, zoned=no, fsverity=no
epollctl add err fd 3, Operation not permitted
epollctl add err fd 15, Operation not permitted
VFS: Mounted root (hostfs filesystem) on device 0:15.
devtmpfs: mounted
This architecture does not have kernel memory protection.
Run /bin/true as init process
userspace - ptrace set fp regs failed, errno = 14
Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
CPU: 0 PID: 1 Comm: true Not tainted 6.1.176 #1 
Stack:
 606944ba 607e7fcd 62c33b90 6067bb96
 00000001 607e7fcd 60045fda 0000000b
Call Trace:
";

    #[test]
    fn the_fp_regs_line_is_the_amx_diagnosis() {
        let cause = diagnose(AMX_PANIC).expect("a known cause");
        assert_eq!(cause, Cause::XsaveTooLarge);
        let text = cause.to_string();
        assert!(text.contains("AMX"), "{text}");
        assert!(text.contains("make deps"), "{text}");
        assert!(text.contains("IPVSLAB_UML_KERNEL"), "{text}");
    }

    #[test]
    fn other_panics_quote_their_line() {
        let log = "[    0.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n";
        assert_eq!(
            diagnose(log),
            Some(Cause::Panic(
                "Kernel panic - not syncing: VFS: Unable to mount root fs".into()
            ))
        );
        assert_eq!(diagnose("  \n"), Some(Cause::Silent));
        assert_eq!(diagnose("[    0.1] all is well\n"), None);
        assert_eq!(
            diagnose("Kernel panic - not syncing: No working init found.\n"),
            Some(Cause::NoInit)
        );
    }

    #[test]
    fn the_excerpt_starts_just_before_the_cause() {
        let t = tail(AMX_PANIC, 3);
        assert_eq!(
            t,
            "This architecture does not have kernel memory protection.\n\
             Run /bin/true as init process\n\
             userspace - ptrace set fp regs failed, errno = 14"
        );
        let plain = "[    0.1] one\r\n[    0.2] two\r\nthree\n";
        assert_eq!(tail(plain, 2), "two\nthree");
        assert_eq!(tail(plain, 100).lines().count(), 3);
    }
}
