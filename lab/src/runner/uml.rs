//! Host side of the User-Mode Linux runner: boot `linux.uml` with the host's
//! filesystem as root and this `lab` binary as init, stream the guest's
//! console, and bring back the job's exit status.
//!
//! Ownership: the kernel runs in its own process group (`setsid`) with a
//! parent-death signal, inside a private run directory (`uml_dir=`), so
//! SIGINT/SIGTERM, an error or a panic here stops it and leaves no helper
//! process and no `~/.uml/<umid>` behind.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::RunnerError;
use super::guest::RUN_DIR_ENV;
use super::job::{GuestJob, JOB_FILE, READY_FILE, STATUS_FILE};

/// Environment variable that overrides where the UML kernel is looked for.
pub const KERNEL_ENV: &str = "IPVSLAB_UML_KERNEL";
const DEFAULT_KERNEL: &str = "/usr/bin/linux.uml";
const MODULES_ROOT: &str = "/usr/lib/uml/modules";

/// An installed User-Mode Linux kernel and its module tree.
#[derive(Debug, Clone)]
pub struct UmlKernel {
    /// The kernel binary (`linux.uml`).
    pub binary: PathBuf,
    /// Its release, the name of its modules directory (e.g. `6.1.176`).
    pub release: String,
    /// Its modules (`/usr/lib/uml/modules/<release>`).
    pub modules: PathBuf,
}

impl UmlKernel {
    /// Finds the UML kernel: `$IPVSLAB_UML_KERNEL`, else `linux.uml` on
    /// `PATH`, else `/usr/bin/linux.uml`; and its modules directory.
    pub fn locate() -> Result<Self, RunnerError> {
        let binary = std::env::var_os(KERNEL_ENV)
            .map(PathBuf::from)
            .or_else(|| find_on_path("linux.uml"))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KERNEL));
        if !binary.is_file() {
            return Err(RunnerError::NoIpvsNoUml {
                kernel: super::kernel_release(),
                uml_hint: binary.display().to_string(),
            });
        }
        let release = std::fs::read_dir(MODULES_ROOT)
            .ok()
            .and_then(|entries| {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().join("kernel").is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names.pop()
            })
            .ok_or_else(|| RunnerError::UmlModulesMissing {
                kernel: binary.clone(),
                modules: PathBuf::from(MODULES_ROOT),
            })?;
        let modules = Path::new(MODULES_ROOT).join(&release);
        if !modules.join("kernel/net/netfilter/ipvs").is_dir() {
            return Err(RunnerError::UmlModulesMissing {
                kernel: binary,
                modules: modules.join("kernel/net/netfilter/ipvs"),
            });
        }
        Ok(Self {
            binary,
            release,
            modules,
        })
    }
}

/// The first file called `name` in a directory of `$PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

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
}

impl UmlOptions {
    /// Defaults for running `init` as the guest's PID 1.
    pub fn new(init: impl Into<PathBuf>) -> Self {
        Self {
            init: init.into(),
            mem_mib: 384,
            cpu: None,
            interactive: false,
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
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
    let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
    let umid = format!("ipvslab-{}-{}", std::process::id(), n);
    let dir = std::env::temp_dir().join(format!("{umid}.uml"));
    let run_dir_err = |source| RunnerError::RunDir {
        path: dir.clone(),
        source,
    };
    if dir.to_string_lossy().contains(char::is_whitespace) {
        return Err(run_dir_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the kernel command line cannot carry a path with spaces; set TMPDIR to one without",
        )));
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(run_dir_err)?;
    let run_dir = RunDir(dir.clone());
    let job_text = serde_json::to_vec(job).expect("a GuestJob always serializes");
    std::fs::write(dir.join(JOB_FILE), job_text).map_err(run_dir_err)?;

    let cpu = opts.cpu.unwrap_or_else(pick_cpu);
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
        .arg("quiet")
        .arg("loglevel=0")
        .arg(format!("uml_dir={}", dir.display()))
        .arg(format!("umid={umid}"))
        .arg(format!("{RUN_DIR_ENV}={}", dir.display()))
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
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Own process group, so a last-resort killpg reaches UML's helpers.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // If this lab dies without cleaning up, the kernel still stops.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
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

    let interrupted = Arc::new(AtomicBool::new(false));
    let sig_ids = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
        .iter()
        .filter_map(|&s| signal_hook::flag::register(s, Arc::clone(&interrupted)).ok())
        .collect::<Vec<_>>();
    let unregister = || {
        for id in &sig_ids {
            signal_hook::low_level::unregister(*id);
        }
    };

    // An interactive guest console does its own echo and line editing: put
    // the host terminal in raw mode meanwhile (restored on every path).
    let _raw = if opts.interactive {
        RawTerminal::enter()
    } else {
        None
    };
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(source) => {
            unregister();
            return Err(RunnerError::Spawn {
                kernel: kernel.binary.clone(),
                source,
            });
        }
    };
    let guard = KernelGuard(child.id() as i32);
    let out_pump = pump(child.stdout.take(), false);
    let err_pump = pump(child.stderr.take(), true);

    let status = wait_or_stop(&mut child, &interrupted);
    let total = started.elapsed();
    drop(guard);
    unregister();
    if let Some(p) = out_pump {
        let _ = p.join();
    }
    if let Some(p) = err_pump {
        let _ = p.join();
    }
    let status = status?;
    if interrupted.load(Ordering::SeqCst) {
        return Err(RunnerError::Interrupted);
    }

    let boot_to_ready = std::fs::read_to_string(dir.join(READY_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .and_then(|us| {
            (UNIX_EPOCH + Duration::from_micros(us))
                .duration_since(started_wall)
                .ok()
        });
    let exit_code = std::fs::read_to_string(dir.join(STATUS_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .ok_or_else(|| RunnerError::NoStatus {
            uml_status: status.to_string(),
        })?;
    drop(run_dir);
    Ok(UmlOutcome {
        exit_code,
        boot_to_ready,
        total,
    })
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
        // SAFETY: plain syscalls on a process group we created.
        unsafe {
            libc::killpg(self.0, libc::SIGKILL);
        }
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
                    // SAFETY: signalling our own child.
                    unsafe {
                        libc::kill(child.id() as i32, libc::SIGTERM);
                    }
                    asked_at = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(3) => {
                    // SAFETY: our own child's process group.
                    unsafe {
                        libc::killpg(child.id() as i32, libc::SIGKILL);
                    }
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
) -> Option<std::thread::JoinHandle<()>> {
    let stream = stream?;
    Some(std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
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
    }))
}

/// Spreads concurrent labs over the CPUs this process may use.
fn pick_cpu() -> usize {
    // SAFETY: sched_getaffinity fills a zeroed cpu_set_t.
    let allowed: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 0;
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    };
    if allowed.is_empty() {
        return 0;
    }
    allowed[std::process::id() as usize % allowed.len()]
}
