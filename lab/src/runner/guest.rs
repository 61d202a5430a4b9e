//! Guest side of the User-Mode Linux runner: the `lab` binary as PID 1.
//!
//! The guest's root is the host's filesystem through hostfs, where every
//! write goes straight through to the host. So before anything runs, init
//! covers the places where the lab writes kernel-ish state with the guest's
//! own tmpfs: `/run` (netns bind mounts under `/run/netns` would otherwise
//! appear on the host), `/tmp`, `/dev/shm`. The run directory is bound under
//! the new `/run` first, through an fd opened before anything covered it.
//! Then it loads IPVS (nothing to load when the kernel has it built in, as
//! the lab's own does), runs the job, writes the job's exit status through
//! hostfs and powers off (init must never exit: that panics the guest).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;

use super::GUEST_ENV;
use super::job::{GuestJob, JOB_FILE, READY_FILE, STATUS_FILE};

/// Kernel argument (and so init's environment variable) naming the host run directory.
pub const RUN_DIR_ENV: &str = "IPVSLAB_UML_RUN";

/// Where the host run directory is bound inside the guest.
const GUEST_RUN_DIR: &str = "/run/ipvslab-host";

/// Modules every lab needs from a distribution kernel: IPVS with all its
/// schedulers, and the links (`modprobe` takes one module unless given `-a`).
const MODULES: &[&str] = &[
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sh",
    "ip_vs_dh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_mh",
    "veth",
    "bridge",
    // nftables, for blackhole faults inside a real server's namespace.
    "nf_tables",
];

/// If this process is PID 1 of the lab's UML guest, run the guest's init and
/// power off; otherwise return at once. Call first thing in `main`.
pub fn become_init_if_guest() {
    if std::process::id() != 1 {
        return;
    }
    let Some(run_dir) = std::env::var_os(RUN_DIR_ENV) else {
        return;
    };
    let code = match std::panic::catch_unwind(|| init(Path::new(&run_dir))) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("ipvs-lab guest init: {e}");
            write_status_best_effort(70);
            70
        }
        Err(_) => {
            write_status_best_effort(70);
            70
        }
    };
    let _ = code;
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // reboot(2) does not return on success; never let init exit.
    loop {
        std::thread::park();
    }
}

/// What went wrong while preparing the guest.
#[derive(Debug, thiserror::Error)]
enum InitError {
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the job {path}: {source}")]
    Job {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "`modprobe -a {modules}` failed ({status}); the UML modules under /usr/lib/uml/modules may be incomplete"
    )]
    Modprobe { modules: String, status: String },
    #[error(
        "this guest kernel ({release}) has no IPVS built in and no module tree at {tree}; \
         run `make deps` for the lab's own kernel, which has IPVS built in"
    )]
    NoIpvs { release: String, tree: String },
}

fn sys(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(nix::Error) -> InitError {
    let path = path.as_ref().display().to_string();
    move |source| InitError::Sys { op, path, source }
}

fn io(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> InitError {
    let path = path.as_ref().display().to_string();
    move |source| InitError::Io { op, path, source }
}

fn mount_fs(fstype: &str, target: &str, data: Option<&str>) -> Result<(), InitError> {
    std::fs::create_dir_all(target).map_err(io("mkdir", target))?;
    mount(
        Some(fstype),
        target,
        Some(fstype),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        data,
    )
    .map_err(sys("mount", target))
}

fn bind(source: &Path, target: &str) -> Result<(), InitError> {
    std::fs::create_dir_all(target).map_err(io("mkdir", target))?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys("bind mount", target))
}

fn read_job() -> Result<GuestJob, InitError> {
    let job_path = Path::new(GUEST_RUN_DIR).join(JOB_FILE);
    let job_text = std::fs::read(&job_path).map_err(io("read", &job_path))?;
    serde_json::from_slice(&job_text).map_err(|source| InitError::Job {
        path: job_path.display().to_string(),
        source,
    })
}

fn init(host_run_dir: &Path) -> Result<i32, InitError> {
    use_job_consoles();
    mount_fs("proc", "/proc", None)?;
    mount_fs("sysfs", "/sys", None)?;
    // Hold the run directory before /run or /tmp is covered: it may live
    // under either on the host.
    let run_fd: OwnedFd = open(
        host_run_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", host_run_dir))?;
    mount_fs("tmpfs", "/run", Some("mode=755"))?;
    let via_fd = PathBuf::from(format!("/proc/self/fd/{}", run_fd.as_raw_fd()));
    bind(&via_fd, GUEST_RUN_DIR)?;
    drop(run_fd);
    // The job's own places under the host's /tmp (a checkout, a report
    // folder) are bound back over the guest's private /tmp.
    let job = read_job()?;
    let mut tmp_fds = Vec::new();
    for entry in &job.host_tmp_entries {
        let host = Path::new(super::job::GUEST_PRIVATE_TMP).join(entry);
        if let Ok(fd) = open(&host, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
            tmp_fds.push((host, fd));
        }
    }
    mount_fs("tmpfs", "/tmp", Some("mode=1777"))?;
    for (path, fd) in tmp_fds {
        let via_fd = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        if std::fs::metadata(&via_fd)
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            bind(&via_fd, &path.to_string_lossy())?;
        } else {
            // A file: bind onto an empty file of the same name.
            std::fs::write(&path, b"").map_err(io("create", &path))?;
            mount(
                Some(&via_fd),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys("bind mount", &path))?;
        }
    }
    mount_fs("tmpfs", "/dev/shm", Some("mode=1777"))?;
    mount_fs("devpts", "/dev/pts", Some("mode=620,ptmxmode=666"))?;
    set_loopback_up()?;
    size_neighbour_tables();

    load_modules(&job)?;

    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let ready = Path::new(GUEST_RUN_DIR).join(READY_FILE);
    std::fs::write(&ready, now_us.to_string()).map_err(io("write", &ready))?;

    let argv = job.argv_os();
    let Some((program, args)) = argv.split_first() else {
        write_status(0)?;
        return Ok(0);
    };
    // The job inherits init's stdio, which `use_job_consoles` put on con0
    // and con1 (the host's stdout and stderr).
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(job.env.iter().map(|(k, v)| {
            use std::os::unix::ffi::OsStringExt;
            (
                std::ffi::OsString::from_vec(k.clone()),
                std::ffi::OsString::from_vec(v.clone()),
            )
        }))
        .env(GUEST_ENV, "uml")
        .current_dir(job.cwd_path());
    let code = match cmd.spawn() {
        Ok(child) => reap_until(child.id() as i32),
        Err(e) => {
            eprintln!(
                "ipvs-lab guest init: cannot start {}: {e}",
                Path::new(program).display()
            );
            127
        }
    };
    write_status(code)?;
    Ok(code)
}

/// The neighbour (ARP and NDP) garbage-collection thresholds of this guest
/// kernel, written once from its initial namespace.
const NEIGHBOUR_GC_THRESHOLDS: [(&str, u32); 3] = [
    ("gc_thresh1", 8192),
    ("gc_thresh2", 32768),
    ("gc_thresh3", 65536),
];

/// Sizes the guest kernel's neighbour tables for a thousand client IPs.
/// Why: a kernel has ONE ARP table for all its network namespaces, capped by
/// `gc_thresh3` (1,024 by default, and only the initial namespace may change
/// it). With 1,000 client IPs the director learns every client from its ARP
/// requests for the VIP and each real server resolves the clients it
/// answers, so the table overflows ("neighbour: arp_cache: neighbor table
/// overflow!"), new entries are refused and connects time out, the lab's own
/// queries to the servers included (measured: 20 of 2,020 connects and the
/// counters of 6 of 16 servers lost at 16 servers × 1,000 client IPs). This
/// is the lab's own guest kernel, never the host's. Best effort: a kernel
/// without IPv6 has no `ipv6` folder.
fn size_neighbour_tables() {
    for family in ["ipv4", "ipv6"] {
        for (name, value) in NEIGHBOUR_GC_THRESHOLDS {
            let path = format!("/proc/sys/net/{family}/neigh/default/{name}");
            if let Err(e) = std::fs::write(&path, value.to_string())
                && family == "ipv4"
            {
                eprintln!("ipvs-lab guest init: cannot write {path}: {e}");
            }
        }
    }
}

/// The kernel opens init's stdin, stdout and stderr on `/dev/console`, which
/// the runner points at the kernel-log console (`console=tty2`). Init and
/// the job talk on the job's own consoles instead: con0 (`/dev/tty0`, the
/// host's stdout, and stdin when interactive) and con1 (`/dev/tty1`, the
/// host's stderr). Where they cannot be opened, init keeps the console.
fn use_job_consoles() {
    use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
    use std::os::fd::{AsRawFd, IntoRawFd};
    let open = |path: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .ok()
    };
    // After dup2 the opened file closes when it drops, unless it landed on
    // a standard descriptor itself (one was closed), which must stay open.
    let keep_if_standard = |file: std::fs::File| {
        if file.as_raw_fd() <= 2 {
            let _ = file.into_raw_fd();
        }
    };
    if let Some(tty0) = open("/dev/tty0") {
        let _ = dup2_stdin(&tty0);
        let _ = dup2_stdout(&tty0);
        keep_if_standard(tty0);
    }
    if let Some(tty1) = open("/dev/tty1") {
        let _ = dup2_stderr(&tty1);
        keep_if_standard(tty1);
    }
}

/// IPVS and the links the lab uses. The lab's own kernel has them built in
/// (`/proc/net/ip_vs` exists at boot): nothing to load. A distribution
/// kernel ships them as modules under `/usr/lib/uml/modules/<release>`.
fn load_modules(job: &GuestJob) -> Result<(), InitError> {
    if Path::new("/proc/net/ip_vs").exists() {
        return Ok(());
    }
    // modprobe looks under <root>/lib/modules/<release>. The host may have
    // no /lib/modules at all, and creating it through hostfs would write to
    // the host, so build a module root inside the guest's own /run and point
    // modprobe at it. (The kernel's own module autoloading cannot use it, so
    // every module the lab needs is loaded up front.)
    let release = super::kernel_release();
    let tree = Path::new(super::kernel::MODULES_ROOT).join(&release);
    if !tree.is_dir() {
        return Err(InitError::NoIpvs {
            release,
            tree: tree.display().to_string(),
        });
    }
    let module_root = "/run/ipvslab-modroot";
    let target = format!("{module_root}/lib/modules/{release}");
    bind(&tree, &target)?;
    let mut modules: Vec<&str> = MODULES.to_vec();
    modules.extend(job.modules.iter().map(String::as_str));
    let modprobe = ["/usr/sbin/modprobe", "/sbin/modprobe"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("modprobe");
    let status = Command::new(modprobe)
        .arg("-d")
        .arg(module_root)
        .arg("-a")
        .args(&modules)
        .stdin(Stdio::null())
        .status()
        .map_err(io("spawn", "modprobe"))?;
    if !status.success() {
        return Err(InitError::Modprobe {
            modules: modules.join(" "),
            status: status.to_string(),
        });
    }
    Ok(())
}

/// As PID 1 every orphan is ours to reap; wait until the job itself exits.
fn reap_until(job: i32) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == job => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == job => {
                return 128 + sig as i32;
            }
            Ok(_) => {}
            Err(nix::Error::EINTR) => {}
            Err(_) => return 70,
        }
    }
}

fn write_status(code: i32) -> Result<(), InitError> {
    let path = Path::new(GUEST_RUN_DIR).join(STATUS_FILE);
    std::fs::write(&path, format!("{code}\n")).map_err(io("write", &path))?;
    nix::unistd::sync();
    Ok(())
}

fn write_status_best_effort(code: i32) {
    let _ = write_status(code);
}

/// `ip link set lo up`, without forking `ip`.
fn set_loopback_up() -> Result<(), InitError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;
    let io_err = |op, source| InitError::Io {
        op,
        path: "lo".into(),
        source,
    };
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| io_err("socket", e.into()))?;
    let mut req = libc::ifreq {
        ifr_name: [0; libc::IFNAMSIZ],
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: 0 },
    };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write `req`, a whole
    // ifreq we own, on a socket we own; the union field read is the one
    // SIOCGIFFLAGS just filled.
    let result = unsafe {
        let mut result = libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req);
        if result == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            result = libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req);
        }
        result
    };
    if result != 0 {
        return Err(io_err("set up", std::io::Error::last_os_error()));
    }
    Ok(())
}
