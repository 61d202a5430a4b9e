//! Where the lab runs: on the host kernel, or inside User-Mode Linux.
//!
//! Many kernels (these machines', CI runners', containers') are built without
//! IPVS. User-Mode Linux is a Linux kernel that runs as an ordinary process,
//! so when the host cannot do IPVS the lab boots one that has it, with the
//! host's filesystem as its root, and runs the very same `lab` invocation
//! inside it ([`uml`]). Which kernel is booted, and why, is [`kernel`]'s job:
//! by default the lab's own build, with IPVS built in. Inside the guest, the
//! `lab` binary itself is PID 1 ([`guest`]). When a guest dies, [`diagnose`]
//! reads its console log for the cause.
//!
//! A missing IPVS is a clear error, never a silent fallback to something that
//! is not IPVS.

#[forbid(unsafe_code)]
pub mod diagnose;
pub mod guest;
#[forbid(unsafe_code)]
pub mod job;
#[forbid(unsafe_code)]
pub mod kernel;
#[forbid(unsafe_code)]
pub mod leftovers;
pub mod uml;

use std::path::{Path, PathBuf};

/// Set in the environment of every job that runs inside the lab's UML guest.
pub const GUEST_ENV: &str = "IPVSLAB_GUEST";

/// Tells a job in the guest whether the host's stderr is a terminal (`1`)
/// or not (`0`): the guest's console always looks like one.
pub const STDERR_TTY_ENV: &str = "IPVSLAB_STDERR_TTY";

/// Set in a guest job's environment: where the guest's kernel came from
/// (`lab`, `override`, `distribution`), for reports.
pub const KERNEL_ORIGIN_ENV: &str = "IPVSLAB_KERNEL_ORIGIN";

/// Set in a guest job's environment for the lab's own kernel: the Debian
/// source package and version it was built from.
pub const KERNEL_SOURCE_ENV: &str = "IPVSLAB_KERNEL_SOURCE";

/// Which kernel a command runs on, as chosen with `--runner`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum RunnerChoice {
    /// The host kernel when it has IPVS, else User-Mode Linux.
    #[default]
    Auto,
    /// The host kernel; an error when it has no IPVS.
    Host,
    /// Always User-Mode Linux, even when the host has IPVS.
    Uml,
}

/// The runner actually used, after resolving [`RunnerChoice::Auto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    /// The kernel this process runs on (which may itself be the UML guest).
    Host,
    /// A User-Mode Linux guest booted for this command.
    Uml,
}

/// Why a runner cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The host has no IPVS and no UML kernel is installed.
    #[error(
        "this kernel ({kernel}) has no IPVS (no /proc/net/ip_vs, and `modprobe ip_vs` failed) and \
         no User-Mode Linux kernel was found at {uml_hint}. Run `make deps`, which builds the \
         lab's own UML kernel with IPVS built in (8 to 14 minutes on 2 cores, once), or set \
         IPVSLAB_UML_KERNEL to a UML kernel with IPVS, or run on a kernel built with CONFIG_IP_VS"
    )]
    NoIpvsNoUml {
        /// `uname -r` of the host.
        kernel: String,
        /// Where a UML kernel was looked for.
        uml_hint: String,
    },
    /// `--runner host` was asked for but the host has no IPVS.
    #[error(
        "--runner host was asked for, but this kernel ({kernel}) has no IPVS (no /proc/net/ip_vs, \
         and `modprobe ip_vs` failed). Use `--runner uml` (the lab's own UML kernel, built by \
         `make deps`) or `--runner auto`"
    )]
    HostHasNoIpvs {
        /// `uname -r` of the host.
        kernel: String,
    },
    /// Already inside the lab's UML guest, which cannot boot another one.
    #[error("already running inside the lab's User-Mode Linux guest; nested UML is not supported")]
    NestedUml,
    /// The UML kernel exists but the IPVS modules of its release are missing.
    #[error(
        "User-Mode Linux kernel {kernel} found, but no IPVS modules for its release in {modules}: \
         reinstall Debian's `user-mode-linux` package, or run `make deps` for the lab's own \
         kernel, which has IPVS built in"
    )]
    UmlModulesMissing {
        /// The UML kernel binary.
        kernel: PathBuf,
        /// The directory that should hold its modules.
        modules: PathBuf,
    },
    /// The file named as the kernel cannot be one.
    #[error(
        "the User-Mode Linux kernel {kernel} cannot be used: {reason}; point IPVSLAB_UML_KERNEL \
         at a UML kernel, or unset it to use the lab's own (`make deps` builds it)"
    )]
    BadKernel {
        /// The file.
        kernel: PathBuf,
        /// Why not.
        reason: String,
    },
    /// Preparing the guest's run directory failed.
    #[error("cannot prepare the UML run directory {path}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Starting `linux.uml` failed.
    #[error("cannot start the User-Mode Linux kernel {kernel}")]
    Spawn {
        /// The UML kernel binary.
        kernel: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for `linux.uml` failed.
    #[error("waiting for the User-Mode Linux kernel failed")]
    Wait(#[source] std::io::Error),
    /// The guest stopped without writing the job's exit status.
    #[error(
        "the User-Mode Linux guest ({kernel}) stopped without reporting the job's exit status \
         ({uml_status}): {cause}.\nThe kernel's last console lines:\n{console_tail}"
    )]
    NoStatus {
        /// The kernel binary.
        kernel: PathBuf,
        /// How the kernel process itself ended.
        uml_status: String,
        /// The diagnosis, with its fix where one is known.
        cause: String,
        /// The last lines of the kernel's console log.
        console_tail: String,
    },
    /// Time travel was asked for, but the UML kernel lacks it.
    #[error(
        "time travel was asked for (`[time] mode = \"travel\"` or --time-travel), but the User-Mode \
         Linux kernel {kernel} was built without CONFIG_UML_TIME_TRAVEL_SUPPORT (its `--help` \
         offers no `time-travel`). Run `make deps` for the lab's own kernel, which has it, or \
         unset IPVSLAB_UML_KERNEL, or run the scenario with `[time] mode = \"real\"`"
    )]
    NoTimeTravel {
        /// The kernel binary.
        kernel: PathBuf,
    },
    /// Time travel was asked for on a kernel that is not UML.
    #[error(
        "time travel was asked for (`[time] mode = \"travel\"` or --time-travel), but this run \
         uses the host's kernel ({kernel}), whose clock the lab must not touch. Pass `--runner \
         uml` to run it in the lab's User-Mode Linux guest, or set `[time] mode = \"real\"`"
    )]
    TimeTravelOnHost {
        /// `uname -r` of the host.
        kernel: String,
    },
    /// The run was interrupted by SIGINT/SIGTERM.
    #[error("interrupted by a signal; the User-Mode Linux guest was stopped")]
    Interrupted,
}

/// `uname -r` of the running kernel.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// True inside a job that the lab's UML guest started.
pub fn in_guest() -> bool {
    std::env::var_os(GUEST_ENV).is_some()
}

/// True when this process runs in a guest booted in time-travel mode: its
/// clock skips idle time, so every duration it measures is guest time.
pub fn guest_time_travel() -> bool {
    in_guest()
        && std::fs::read_to_string("/proc/cmdline")
            .is_ok_and(|c| c.split_whitespace().any(|a| a == uml::TIME_TRAVEL_ARG))
}

/// Whether the kernel this process runs on can do IPVS.
///
/// `/proc/net/ip_vs` exists exactly when the `ip_vs` module is loaded (or
/// built in). When it is missing, one quiet `modprobe ip_vs` is tried, as
/// ipvsadm and keepalived do.
pub fn host_has_ipvs() -> bool {
    if Path::new("/proc/net/ip_vs").exists() {
        return true;
    }
    let loaded = std::process::Command::new("modprobe")
        .arg("-q")
        .arg("ip_vs")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    loaded && Path::new("/proc/net/ip_vs").exists()
}

/// Resolves `--runner` against this machine.
///
/// Inside the lab's own guest the answer is always [`RunnerKind::Host`]: the
/// guest kernel is the one with IPVS, and nested UML is refused.
pub fn resolve(choice: RunnerChoice) -> Result<RunnerKind, RunnerError> {
    if in_guest() {
        return match choice {
            RunnerChoice::Uml => Err(RunnerError::NestedUml),
            _ => Ok(RunnerKind::Host),
        };
    }
    match choice {
        RunnerChoice::Host => {
            if host_has_ipvs() {
                Ok(RunnerKind::Host)
            } else {
                Err(RunnerError::HostHasNoIpvs {
                    kernel: kernel_release(),
                })
            }
        }
        RunnerChoice::Uml => {
            uml::UmlKernel::locate()?;
            Ok(RunnerKind::Uml)
        }
        RunnerChoice::Auto => {
            if host_has_ipvs() {
                Ok(RunnerKind::Host)
            } else {
                uml::UmlKernel::locate()?;
                Ok(RunnerKind::Uml)
            }
        }
    }
}

/// Where this process runs, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentKernel {
    /// Host kernel, or inside the lab's UML guest.
    pub kind: RunnerKind,
    /// `uname -r`.
    pub release: String,
    /// In a guest: where its kernel came from.
    pub origin: Option<kernel::KernelOrigin>,
    /// In a guest on the lab's own kernel: the source it was built from.
    pub source: Option<String>,
}

/// Describes the kernel this process runs on: inside the guest, the UML
/// kernel's release and origin; elsewhere the host's release.
pub fn describe_current() -> CurrentKernel {
    let in_uml = std::env::var(GUEST_ENV).as_deref() == Ok("uml");
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    CurrentKernel {
        kind: if in_uml {
            RunnerKind::Uml
        } else {
            RunnerKind::Host
        },
        release: kernel_release(),
        origin: in_uml
            .then(|| var(KERNEL_ORIGIN_ENV))
            .flatten()
            .and_then(|o| kernel::KernelOrigin::from_name(&o)),
        source: in_uml.then(|| var(KERNEL_SOURCE_ENV)).flatten(),
    }
}

/// Runs this very `lab` invocation (same arguments, directory and
/// environment) inside a User-Mode Linux guest and returns the job's exit
/// code. The guest sees the host filesystem, so reports land where they would
/// have on the host.
///
/// `shared` names host paths the job will write (report folders, JSON
/// files): each is shared into the guest even under the guest's private
/// `/tmp`. They must exist already.
///
/// With `time_travel` the guest boots in time-travel mode (refused with
/// [`RunnerError::NoTimeTravel`] on a kernel without it).
pub fn rerun_self_in_uml(
    interactive: bool,
    shared: &[PathBuf],
    time_travel: bool,
) -> Result<uml::UmlOutcome, RunnerError> {
    let kernel = uml::UmlKernel::locate()?;
    if time_travel && !kernel.supports_time_travel() {
        return Err(RunnerError::NoTimeTravel {
            kernel: kernel.binary,
        });
    }
    let exe = uml::current_lab()?;
    let mut argv: Vec<std::ffi::OsString> = vec![exe.clone().into()];
    argv.extend(std::env::args_os().skip(1));
    let mut job = uml::job_here(argv)?;
    job.share_host_paths(shared);
    use std::io::IsTerminal;
    let tty = if std::io::stderr().is_terminal() {
        "1"
    } else {
        "0"
    };
    job.env
        .retain(|(k, _)| k.as_slice() != STDERR_TTY_ENV.as_bytes());
    job.env
        .push((STDERR_TTY_ENV.as_bytes().to_vec(), tty.as_bytes().to_vec()));
    let mut opts = uml::UmlOptions::new(exe);
    opts.interactive = interactive;
    opts.time_travel = time_travel;
    uml::run(&kernel, &job, &opts)
}
