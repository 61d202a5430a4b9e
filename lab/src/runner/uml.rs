//! Host side of the User-Mode Linux runner: boot `linux.uml` with the host's
//! filesystem as root and this `lab` binary as init, stream the guest's
//! console, and bring back the job's exit status.
//!
//! Ownership: the kernel runs in its own process group (`setsid`) with a
//! parent-death signal, inside a private run directory (`uml_dir=`), so
//! SIGINT/SIGTERM, an error or a panic here stops it and leaves no helper
//! process and no `~/.uml/<umid>` behind.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::RunnerError;
use super::guest::RUN_DIR_ENV;
use super::job::{GuestJob, JOB_FILE, READY_FILE, STATUS_FILE};

pub use super::kernel::{KERNEL_ENV, UmlKernel, find_on_path};

/// File name of the guest kernel's console log inside the run directory.
pub const CONSOLE_LOG: &str = "console.log";

/// The host file descriptor the guest kernel's console (its printk output)
/// writes to: `console.log`, opened by the host before boot.
const CONSOLE_FD: i32 = 3;

/// The kernel parameter of basic time-travel mode (not `=inf-cpu`, which
/// would make every CPU cost vanish from the measurements).
pub const TIME_TRAVEL_ARG: &str = "time-travel";

/// How to boot the guest.
#[derive(Debug, Clone)]
pub struct UmlOptions {
    /// The program the guest runs as PID 1: a `lab` binary.
    pub init: PathBuf,
    /// Guest memory in MiB (backed by a sparse file in `/dev/shm`).
    pub mem_mib: u32,
    /// Host CPU to pin the guest to; `None` picks one from the process id.
    /// Unpinned UML is 3–10× slower and far noisier (DESIGN.md).
    pub cpu: Option<usize>,
    /// Give the guest's console the host's stdin (for `lab shell`).
    pub interactive: bool,
    /// Boot with `time-travel`: the guest's clock skips forward whenever
    /// the guest is idle, so hours of IPVS timers pass in seconds of host
    /// time (CONFIG_UML_TIME_TRAVEL_SUPPORT; see
    /// [`UmlKernel::supports_time_travel`]).
    pub time_travel: bool,
}

impl UmlOptions {
    /// Defaults for running `init` as the guest's PID 1.
    pub fn new(init: impl Into<PathBuf>) -> Self {
        Self {
            init: init.into(),
            mem_mib: 384,
            cpu: None,
            interactive: false,
            time_travel: false,
        }
    }
}

/// What a guest run produced.
#[derive(Debug, Clone)]
pub struct UmlOutcome {
    /// The job's exit code (128 + signal when it was killed).
    pub exit_code: i32,
    /// From starting `linux.uml` until the guest started the job.
    pub boot_to_ready: Option<Duration>,
    /// From starting `linux.uml` until it exited.
    pub total: Duration,
}

/// Removes the run directory when dropped, whatever happened.
struct RunDir {
    /// The guest's name (`umid=`), unique to this process and run.
    umid: String,
    /// The private directory: job, console log, status, UML's own files.
    path: PathBuf,
}

impl RunDir {
    /// Creates a fresh, owner-only run directory under the temporary
    /// directory, named after a new umid.
    fn create() -> Result<Self, RunnerError> {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let umid = format!("ipvslab-{}-{}", std::process::id(), n);
        let path = std::env::temp_dir().join(format!("{umid}.uml"));
        let run_dir_err = |source| RunnerError::RunDir {
            path: path.clone(),
            source,
        };
        if path.to_string_lossy().contains(char::is_whitespace) {
            return Err(run_dir_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the kernel command line cannot carry a path with spaces; set TMPDIR to one without",
            )));
        }
        let _ = std::fs::remove_dir_all(&path);
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(run_dir_err)?;
        }
        Ok(Self { umid, path })
    }

    /// The error for a failed file operation in this directory.
    fn error(&self, source: std::io::Error) -> RunnerError {
        RunnerError::RunDir {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Boots the UML kernel and runs `job` inside it; returns once the guest has
/// powered off. The guest's console (the job's stdout; its stderr goes to a
/// second console) is copied to this process's stdout and stderr line by line
/// with the console's CR stripped.
pub fn run(
    kernel: &UmlKernel,
    job: &GuestJob,
    opts: &UmlOptions,
) -> Result<UmlOutcome, RunnerError> {
    let run_dir = RunDir::create()?;
    let job_text =
        serde_json::to_vec(&guest_job(job, kernel)).expect("a GuestJob always serializes");
    create_private(&run_dir.path.join(JOB_FILE))
        .and_then(|mut f| f.write_all(&job_text))
        .map_err(|e| run_dir.error(e))?;
    let console_path = run_dir.path.join(CONSOLE_LOG);
    let console = create_private(&console_path).map_err(|e| run_dir.error(e))?;
    let mut cmd = kernel_command(kernel, opts, &run_dir);
    confine_kernel(
        &mut cmd,
        console.as_raw_fd(),
        opts.cpu.unwrap_or_else(pick_cpu),
    );

    let signals = StopSignals::register();
    // An interactive guest console does its own echo and line editing: put
    // the host terminal in raw mode meanwhile (restored on every path).
    let _raw = if opts.interactive {
        RawTerminal::enter()
    } else {
        None
    };
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let mut child = cmd.spawn().map_err(|source| RunnerError::Spawn {
        kernel: kernel.binary.clone(),
        source,
    })?;
    drop(console);
    let guard = KernelGuard(child.id() as i32);
    let out_pump = pump(child.stdout.take(), false);
    let err_pump = pump(child.stderr.take(), true);

    let status = wait_or_stop(&mut child, &signals.flag);
    let total = started.elapsed();
    drop(guard);
    let interrupted = signals.unregister();
    let mut printed = Vec::new();
    for pump in [out_pump, err_pump].into_iter().flatten() {
        printed.extend(pump.join().unwrap_or_default());
    }
    let status = status?;
    if interrupted {
        return Err(RunnerError::Interrupted);
    }

    let boot_to_ready = read_ready(&run_dir.path, started_wall);
    let exit_code = read_exit_code(&run_dir.path)
        .ok_or_else(|| no_status(kernel, &status, &console_path, &printed))?;
    drop(run_dir);
    Ok(UmlOutcome {
        exit_code,
        boot_to_ready,
        total,
    })
}

/// The job as the guest gets it: its report of itself (which kernel it runs
/// on, and whence) added, and its temporary directory its own.
fn guest_job(job: &GuestJob, kernel: &UmlKernel) -> GuestJob {
    let mut job = job.clone();
    job.env.retain(|(k, _)| {
        k.as_slice() != super::KERNEL_ORIGIN_ENV.as_bytes()
            && k.as_slice() != super::KERNEL_SOURCE_ENV.as_bytes()
            && k.as_slice() != b"TMPDIR"
    });
    // The guest's temporary files stay in its private /tmp: a host TMPDIR
    // elsewhere would be written straight through hostfs onto the host.
    job.env.push((b"TMPDIR".to_vec(), b"/tmp".to_vec()));
    job.env.push((
        super::KERNEL_ORIGIN_ENV.as_bytes().to_vec(),
        kernel.origin.as_str().as_bytes().to_vec(),
    ));
    if let Some(build) = &kernel.build {
        job.env.push((
            super::KERNEL_SOURCE_ENV.as_bytes().to_vec(),
            format!("{} {}", build.source_package, build.source_version).into_bytes(),
        ));
    }
    job
}

/// The kernel's command line and standard streams: hostfs root, this `lab`
/// as init, and one console per stream.
fn kernel_command(kernel: &UmlKernel, opts: &UmlOptions, run_dir: &RunDir) -> Command {
    let dir = &run_dir.path;
    let mut cmd = Command::new(&kernel.binary);
    cmd.arg(format!("mem={}M", opts.mem_mib))
        .arg("rootfstype=hostfs")
        .arg("rootflags=/")
        .arg("rw")
        .arg(format!("init={}", opts.init.display()))
        .arg("con=null")
        .arg(if opts.interactive {
            "con0=fd:0,fd:1"
        } else {
            "con0=null,fd:1"
        })
        // A second console carries the job's stderr to ours, so that stdout
        // stays clean for machine-readable output.
        .arg("con1=null,fd:2")
        // The kernel's own messages go to a third console, kept as
        // console.log in the run directory: shown when the guest dies,
        // never mixed into the job's output.
        .arg(format!("con2=null,fd:{CONSOLE_FD}"))
        .arg("console=tty2")
        // `quiet` keeps UML's own start-up checks off the host's stdout;
        // the later loglevel keeps every kernel message in console.log.
        .arg("quiet")
        .arg("loglevel=7")
        .arg(format!("uml_dir={}", dir.display()))
        .arg(format!("umid={}", run_dir.umid))
        .arg(format!("{RUN_DIR_ENV}={}", dir.display()))
        // Basic time travel: idle time is skipped, busy time runs at the
        // host's speed, so latency measured while the guest works is kept.
        .args(opts.time_travel.then_some(TIME_TRAVEL_ARG))
        .stdin(if opts.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        // Interactive: the console talks to the terminal directly (prompts
        // without newlines, CR/LF as the guest tty sends them).
        .stdout(if opts.interactive {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::piped());
    cmd
}

/// Sets up the kernel process between fork and exec: its own session, the
/// console log on fd 3, death with this lab, no core file, pinned to `cpu`.
fn confine_kernel(cmd: &mut Command, console_fd: i32, cpu: usize) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Own process group, so a last-resort killpg reaches UML's helpers.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The console log on the kernel's fd 3 (dup2 clears close-on-exec).
            if console_fd == CONSOLE_FD {
                libc::fcntl(CONSOLE_FD, libc::F_SETFD, 0);
            } else if libc::dup2(console_fd, CONSOLE_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // If this lab dies without cleaning up (SIGKILL), the kernel dies
            // with it at once; UML 7.x's own helpers carry PDEATHSIG=SIGKILL
            // too. What remains (the run directory) is `lab gc`'s.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // A guest panic must not leave a multi-hundred-MiB core file.
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
}

/// SIGINT, SIGTERM and SIGHUP caught into a flag while the guest runs, so
/// that the guest is stopped rather than this lab; unregistered when dropped.
struct StopSignals {
    /// Set once one of the signals arrived.
    flag: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl StopSignals {
    fn register() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let ids = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
            .iter()
            .filter_map(|&s| signal_hook::flag::register(s, Arc::clone(&flag)).ok())
            .collect();
        Self { flag, ids }
    }

    /// Stops catching the signals; true when one arrived meanwhile.
    fn unregister(self) -> bool {
        let flag = Arc::clone(&self.flag);
        drop(self);
        flag.load(Ordering::SeqCst)
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        for id in &self.ids {
            signal_hook::low_level::unregister(*id);
        }
    }
}

/// When the guest started the job, from the wall-clock time it wrote to
/// `ready`, relative to `started_wall`.
fn read_ready(dir: &Path, started_wall: SystemTime) -> Option<Duration> {
    std::fs::read_to_string(dir.join(READY_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .and_then(|us| {
            (UNIX_EPOCH + Duration::from_micros(us))
                .duration_since(started_wall)
                .ok()
        })
}

/// The job's exit code as the guest wrote it to `status`, if it did.
fn read_exit_code(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(STATUS_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
}

/// The error for a guest that stopped without a status: the likely cause and
/// the last lines of its console (or, when that is empty, of what it printed).
fn no_status(
    kernel: &UmlKernel,
    status: &std::process::ExitStatus,
    console_path: &Path,
    printed: &[String],
) -> RunnerError {
    let console = std::fs::read(console_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    // A binary that is not UML (or dies before its console is up)
    // prints to its own stdout/stderr instead.
    let log = if console.trim().is_empty() {
        printed.join("\n")
    } else {
        console
    };
    RunnerError::NoStatus {
        kernel: kernel.binary.clone(),
        uml_status: status.to_string(),
        cause: super::diagnose::diagnose(&log)
            .map(|c| c.to_string())
            .unwrap_or_else(|| {
                "the guest's init failed or the kernel stopped; the console lines below say why"
                    .into()
            }),
        console_tail: super::diagnose::tail(&log, super::diagnose::TAIL_LINES),
    }
}

/// Puts the host's stdin terminal in raw mode until dropped.
struct RawTerminal(nix::sys::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<Self> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

/// Kills the kernel's whole process group when dropped; after a clean
/// poweroff this finds nothing (ESRCH), after a SIGKILL or an error it
/// removes UML's helper processes.
struct KernelGuard(i32);

impl Drop for KernelGuard {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

/// Waits for the kernel; on SIGINT/SIGTERM asks it to stop (SIGTERM makes
/// UML shut down in about 15 ms), then insists.
fn wait_or_stop(
    child: &mut Child,
    interrupted: &AtomicBool,
) -> Result<std::process::ExitStatus, RunnerError> {
    let mut asked_at: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait().map_err(RunnerError::Wait)? {
            return Ok(status);
        }
        if interrupted.load(Ordering::SeqCst) {
            match asked_at {
                None => {
                    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
                    asked_at = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(3) => {
                    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Copies a console stream line by line, stripping the console's CR and
/// UML's own "Powering off." line.
fn pump<R: std::io::Read + Send + 'static>(
    stream: Option<R>,
    to_stderr: bool,
) -> Option<std::thread::JoinHandle<Vec<String>>> {
    let stream = stream?;
    Some(std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        let mut last = std::collections::VecDeque::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let mut end = line.len();
            while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
                end -= 1;
            }
            let text = &line[..end];
            if text == b"Powering off." {
                continue;
            }
            if last.len() == super::diagnose::TAIL_LINES {
                last.pop_front();
            }
            last.push_back(String::from_utf8_lossy(text).into_owned());
            let had_newline = line.last() == Some(&b'\n');
            let write = |w: &mut dyn Write| {
                let _ = w.write_all(text);
                if had_newline {
                    let _ = w.write_all(b"\n");
                }
                let _ = w.flush();
            };
            if to_stderr {
                write(&mut std::io::stderr().lock());
            } else {
                write(&mut std::io::stdout().lock());
            }
        }
        last.into()
    }))
}

/// Creates a new file only its owner can read: the job holds the caller's
/// environment, the console log the guest's messages.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// This `lab` binary, which a guest runs as its init.
pub(super) fn current_lab() -> Result<PathBuf, RunnerError> {
    std::env::current_exe().map_err(|source| RunnerError::Spawn {
        kernel: PathBuf::from("/proc/self/exe"),
        source,
    })
}

/// A job that runs `argv` here (this directory, the allowed environment).
pub(super) fn job_here(argv: Vec<std::ffi::OsString>) -> Result<GuestJob, RunnerError> {
    GuestJob::here(argv).map_err(|source| RunnerError::RunDir {
        path: PathBuf::from("."),
        source,
    })
}

/// Spreads concurrent labs over the CPUs this process may use.
fn pick_cpu() -> usize {
    let Ok(set) = nix::sched::sched_getaffinity(Pid::from_raw(0)) else {
        return 0;
    };
    let allowed: Vec<usize> = (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    if allowed.is_empty() {
        return 0;
    }
    allowed[std::process::id() as usize % allowed.len()]
}

/// Boots `kernel` with this `lab` binary as init and no job: the guest
/// mounts its file systems, checks IPVS, reports status 0 and powers off.
/// The real test of a kernel on this machine (a file that exists may still
/// panic at boot, as Debian's 6.1 does on AMX hosts).
pub fn probe(kernel: &UmlKernel) -> Result<UmlOutcome, RunnerError> {
    run(
        kernel,
        &job_here(Vec::new())?,
        &UmlOptions::new(current_lab()?),
    )
}
