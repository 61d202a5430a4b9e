//! Named network namespaces owned by RAII guards, unique per run.
//!
//! A lab namespace is an ordinary iproute2-style named namespace: a file under
//! `/run/netns` on which `/proc/thread-self/ns/net` of a thread that called
//! `unshare(CLONE_NEWNET)` is bind-mounted. So `ip netns list`, `ip netns exec`
//! and `lab exec` all see it.
//!
//! Names follow `ipvslab-<pid>-<n>-<host>`; `<pid>-<n>` is the [`RunId`]. The pid
//! lets [`gc`] tell a crashed run (pid gone) from a live one, and `<n>` keeps
//! two runs of one process apart.
//!
//! netns-rs creates, enters and removes the namespaces ([`NetNs`] wraps its
//! handle); this module adds the run ids, the `gc` registry, keep markers
//! and the thread discipline. Entering a namespace is per thread
//! (`setns(CLONE_NEWNET)`). This module never moves the caller's thread:
//! [`NetNs::run`] runs its closure on a fresh thread that enters the namespace
//! and dies with it, so no thread is ever left behind
//! in another namespace, even when the closure panics. Children join a
//! namespace between `fork` and `exec` ([`CommandExt::netns`]).

use crate::error_chain;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::mount::{MntFlags, umount2};
use nix::sched::{CloneFlags, setns};
use nix::sys::statfs::{FsType, fstatfs};

/// Where iproute2 (and so this lab) keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";
/// Where `lab up` leaves keep markers (`<run>.keep`) that [`gc`] respects.
pub const STATE_DIR: &str = "/run/ipvslab";
/// Every lab namespace name starts with this.
pub const NAME_PREFIX: &str = "ipvslab-";
/// Longest name this module accepts; a file name may not exceed 255 bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Errors of namespace handling. Each names the operation and the namespace
/// (or path) and keeps the OS error as its source.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The name cannot be a namespace file name.
    #[error("invalid namespace name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A run id did not parse as `<pid>-<n>`.
    #[error("invalid run id {text:?} (expected <pid>-<n>)")]
    InvalidRunId {
        /// The rejected text.
        text: String,
    },
    /// Preparing `/run/netns` (mkdir, shared bind mount) failed.
    #[error("preparing {path}: {op} failed", path = path.display())]
    Prepare {
        /// The failed step.
        op: &'static str,
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A namespace of that name exists already; it is left alone.
    #[error("namespace {name} already exists")]
    AlreadyExists {
        /// The namespace.
        name: String,
    },
    /// Creating the namespace failed at `op`; nothing is left behind.
    #[error("creating namespace {name}: {op} failed")]
    Create {
        /// The namespace.
        name: String,
        /// The failed step (`create file`, `unshare`, `bind mount`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Opening an existing namespace failed.
    #[error("opening namespace {name}")]
    Open {
        /// The namespace.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Opening the namespace file or `setns(CLONE_NEWNET)` failed (netns-rs).
    #[error("entering namespace {name}")]
    Enter {
        /// The namespace.
        name: String,
        /// What netns-rs reported (open or setns, with the OS error).
        #[source]
        source: netns_rs::Error,
    },
    /// Spawning the thread that enters the namespace failed.
    #[error("namespace {name}: spawning a thread failed")]
    Thread {
        /// The namespace.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The closure given to [`NetNs::run`] panicked; its thread is gone.
    #[error("namespace {name}: the closure panicked: {message}")]
    Panicked {
        /// The namespace.
        name: String,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// Removing the namespace failed at `op`.
    #[error("removing namespace {name}: {op} failed")]
    Remove {
        /// The namespace.
        name: String,
        /// The failed step (`unmount`, `unlink`).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Duplicating the namespace fd for a child process failed.
    #[error("namespace {name}: duplicating its fd for a child failed")]
    Dup {
        /// The namespace.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing a lab state file or directory failed.
    #[error("{op} {path}", path = path.display())]
    State {
        /// The failed step.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Identifies one lab run: `<pid>-<n>`, the pid of the process that created it
/// and a number that is unique among that process's runs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct RunId {
    pid: u32,
    n: u32,
}

impl RunId {
    /// A fresh id for this process. `<n>` starts at an offset taken from the
    /// clock (so a recycled pid of a crashed run is unlikely to collide) and
    /// skips any value whose namespaces already exist in `/run/netns`.
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
        // Initialise the counter once with a clock-derived offset below 10^4.
        let _ = NEXT.compare_exchange(
            u32::MAX,
            clock_seed() % 10_000,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        let pid = std::process::id();
        loop {
            let n = NEXT.fetch_add(1, Ordering::SeqCst) % 100_000;
            let id = RunId { pid, n };
            if !run_has_namespaces(&id) {
                return id;
            }
        }
    }

    /// Builds an id from its parts (for tests and for parsing names).
    pub const fn from_parts(pid: u32, n: u32) -> Self {
        RunId { pid, n }
    }

    /// The pid of the process that created the run.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The per-process part of the id.
    pub fn n(&self) -> u32 {
        self.n
    }

    /// The prefix shared by all namespace names of this run.
    pub fn name_prefix(&self) -> String {
        format!("{NAME_PREFIX}{self}-")
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

fn clock_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    nanos.wrapping_mul(2_654_435_761)
}

fn run_has_namespaces(run: &RunId) -> bool {
    let prefix = run.name_prefix();
    fs::read_dir(NETNS_DIR)
        .map(|dir| {
            dir.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        })
        .unwrap_or(false)
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.pid, self.n)
    }
}

impl FromStr for RunId {
    type Err = NetnsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetnsError::InvalidRunId { text: s.to_owned() };
        let (pid, n) = s.split_once('-').ok_or_else(bad)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(pid) || !digits(n) {
            return Err(bad());
        }
        Ok(RunId {
            pid: pid.parse().map_err(|_| bad())?,
            n: n.parse().map_err(|_| bad())?,
        })
    }
}

impl TryFrom<String> for RunId {
    type Error = NetnsError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> String {
        r.to_string()
    }
}

/// The namespace name of `host` in `run`: `ipvslab-<pid>-<n>-<host>`.
pub fn ns_name(run: &RunId, host: &str) -> String {
    format!("{NAME_PREFIX}{run}-{host}")
}

/// Splits a lab namespace name into its run and host; `None` for other names.
pub fn parse_ns_name(name: &str) -> Option<(RunId, String)> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let mut parts = rest.splitn(3, '-');
    let (pid, n, host) = (parts.next()?, parts.next()?, parts.next()?);
    if host.is_empty() {
        return None;
    }
    let run: RunId = format!("{pid}-{n}").parse().ok()?;
    Some((run, host.to_owned()))
}

fn check_name(name: &str) -> Result<(), NetnsError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("longer than 128 bytes")
    } else if name == "." || name == ".." {
        Some("reserved file name")
    } else if name.contains('/') || name.contains('\0') {
        Some("contains '/' or NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetnsError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The lab's netns-rs environment: namespaces live in `/run/netns`, where
/// iproute2 keeps them (netns-rs's default is `/var/run/netns`, which is not
/// always a link to `/run/netns`, e.g. in the UML guest's minimal root).
///
/// netns-rs's `Env::init` makes the directory exist and be a shared mount
/// point, as `ip netns add` does, so that namespace bind mounts made here
/// propagate to other mount namespaces (`ip netns exec` makes a private copy
/// of the mount table).
#[derive(Clone, Copy, Debug, Default)]
struct LabEnv;

impl netns_rs::Env for LabEnv {
    fn persist_dir(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR)
    }
}

/// A namespace as netns-rs holds it: its open file and its path.
type Handle = netns_rs::NetNs<LabEnv>;

/// The step of a netns-rs failure and its OS error, for this module's errors.
fn step_of(e: netns_rs::Error) -> (&'static str, io::Error) {
    use netns_rs::Error as E;
    // netns-rs uses its own nix; its errno converts through the raw number.
    let os = io::Error::from_raw_os_error;
    match e {
        E::CreateNsDirError(e) => ("mkdir", e),
        E::CreateNsError(e) => ("create mount point", e),
        E::OpenNsError(_, e) => ("open", e),
        E::MountError(what, e) if what.starts_with("--make-rshared") => {
            ("make shared", os(e as i32))
        }
        E::MountError(what, e) if what.starts_with("-rbind") => {
            ("bind mount onto itself", os(e as i32))
        }
        E::MountError(_, e) => ("bind mount", os(e as i32)),
        E::UnmountError(_, e) => ("unmount", os(e as i32)),
        E::UnshareError(e) => ("unshare", os(e as i32)),
        E::SetnsError(e) | E::CloseNsError(e) => ("setns", os(e as i32)),
        E::JoinThreadError(what) => ("thread", io::Error::other(what)),
    }
}

/// A named network namespace.
///
/// A guard made by [`NetNs::create`] or [`NetNs::adopt`] removes the namespace
/// when dropped (errors are logged, never panicked on); [`NetNs::remove`] is the
/// fallible form, and [`NetNs::keep`] disarms the guard. One made by
/// [`NetNs::open`] only borrows the namespace and leaves it on drop.
///
/// netns-rs creates, enters and removes the namespace; this guard adds the
/// name checks, the refusal to take over an existing name, ownership and the
/// thread discipline.
///
/// Unlike aya's `NetNsGuard` this guard is `Send`: it never moves the calling
/// thread into the namespace, so it may live across `.await`.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    path: PathBuf,
    /// `None` only for a stale file that [`remove_all`] could not open.
    handle: Option<Handle>,
    owned: bool,
}

impl NetNs {
    /// Creates the namespace `name` (`ip netns add <name>`) and owns it.
    ///
    /// Fails with [`NetnsError::AlreadyExists`] rather than taking over an
    /// existing namespace. On any failure nothing is left behind.
    pub fn create(name: &str) -> Result<NetNs, NetnsError> {
        use netns_rs::Env as _;
        check_name(name)?;
        LabEnv.init().map_err(|e| {
            let (op, source) = step_of(e);
            NetnsError::Prepare {
                op,
                path: NETNS_DIR.into(),
                source,
            }
        })?;
        let path = Path::new(NETNS_DIR).join(name);
        let create_err = |(op, source)| NetnsError::Create {
            name: name.to_owned(),
            op,
            source,
        };
        // Claim the name with O_EXCL first: netns-rs opens the mount point
        // with a plain create, which would reuse an existing file and stack a
        // second namespace on it. Two runs can never share a namespace file.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&path)
        {
            Ok(f) => drop(f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(NetnsError::AlreadyExists {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(create_err(("create mount point", e))),
        }
        // netns-rs unshares on a thread of its own and bind-mounts the new
        // namespace onto the file; the mount keeps it alive after that thread.
        match Handle::new_with_env(name, LabEnv) {
            Ok(handle) => Ok(NetNs {
                name: name.to_owned(),
                path,
                handle: Some(handle),
                owned: true,
            }),
            Err(e) => {
                // netns-rs unlinks the file when the mount failed; a failure
                // after the mount (reopening it) leaves both to us.
                let _ = umount2(&path, MntFlags::MNT_DETACH);
                let _ = fs::remove_file(&path);
                Err(create_err(step_of(e)))
            }
        }
    }

    /// Opens an existing namespace without owning it: dropping the guard leaves
    /// the namespace in place (but [`NetNs::remove`] still removes it).
    pub fn open(name: &str) -> Result<NetNs, NetnsError> {
        check_name(name)?;
        let open_err = |source| NetnsError::Open {
            name: name.to_owned(),
            source,
        };
        let handle = Handle::get_from_env(name, LabEnv).map_err(|e| open_err(step_of(e).1))?;
        // A plain file that is not a bind-mounted namespace would make setns
        // fail later with EINVAL; reject it now.
        if !is_netns_file(handle.file()) {
            return Err(open_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a network namespace",
            )));
        }
        Ok(NetNs {
            name: name.to_owned(),
            path: handle.path().to_owned(),
            handle: Some(handle),
            owned: false,
        })
    }

    /// Opens an existing namespace and takes ownership: it is removed on drop
    /// (`lab down`, `gc`).
    pub fn adopt(name: &str) -> Result<NetNs, NetnsError> {
        let mut ns = Self::open(name)?;
        ns.owned = true;
        Ok(ns)
    }

    /// A guard for a stale file under `/run/netns` (no namespace mounted on
    /// it), only to remove it.
    fn stale(name: &str) -> NetNs {
        NetNs {
            name: name.to_owned(),
            path: Path::new(NETNS_DIR).join(name),
            handle: Handle::get_from_env(name, LabEnv).ok(),
            owned: false,
        }
    }

    /// The namespace's name (the file name under `/run/netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn handle(&self) -> &Handle {
        self.handle
            .as_ref()
            .expect("the handle is present until remove/keep consume the guard")
    }

    /// The namespace fd, e.g. for `setns` in a child or `IFLA_NET_NS_FD`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.handle().file().as_fd()
    }

    /// Whether dropping this guard removes the namespace.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Runs `f` on a fresh thread that has entered this namespace and returns
    /// its result. The thread ends with `f`, so nothing else ever runs in the
    /// namespace by accident; a panic in `f` becomes [`NetnsError::Panicked`].
    ///
    /// Blocking: call it from synchronous code, or from async code for short
    /// work only (it parks the calling thread until `f` returns).
    pub fn run<F, T>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let handle = self.handle();
        let outcome = std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(thread_name(&self.name))
                .spawn_scoped(scope, move || {
                    // netns-rs does the setns; the fresh thread that dies with
                    // `f` is this module's discipline on top.
                    handle.enter().map(|()| f())
                })
                .map_err(|source| NetnsError::Thread {
                    name: self.name.clone(),
                    source,
                })?;
            thread.join().map_err(|payload| NetnsError::Panicked {
                name: self.name.clone(),
                message: panic_message(payload.as_ref()),
            })
        })?;
        outcome.map_err(|source| NetnsError::Enter {
            name: self.name.clone(),
            source,
        })
    }

    /// Removes the namespace (`ip netns del`): unmounts and unlinks its file.
    /// The kernel frees it once no process, thread or socket uses it any more.
    pub fn remove(mut self) -> Result<(), NetnsError> {
        self.owned = false;
        self.remove_inner()
    }

    /// Disarms the guard and returns the name: the namespace outlives it
    /// (`lab up`).
    pub fn keep(mut self) -> String {
        self.owned = false;
        std::mem::take(&mut self.name)
    }

    fn remove_inner(&mut self) -> Result<(), NetnsError> {
        let err = |op, source| NetnsError::Remove {
            name: self.name.clone(),
            op,
            source,
        };
        // netns-rs closes its fd first (so it does not keep the namespace
        // alive), then unmounts. A file it could not even open is only
        // unlinked below.
        if let Some(handle) = self.handle.take() {
            match handle.remove() {
                Ok(()) => {}
                Err(netns_rs::Error::UnmountError(_, e)) => match e as i32 {
                    // Gone already: `lab down` after `ip netns del`.
                    libc::ENOENT => return Ok(()),
                    // Not mounted (a half-created or stale file): still unlink.
                    libc::EINVAL => {}
                    n => return Err(err("unmount", io::Error::from_raw_os_error(n))),
                },
                Err(e) => return Err(err("unmount", step_of(e).1)),
            }
        }
        // netns-rs ignores a failed unlink; this guard reports it.
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err("unlink", e)),
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.owned {
            self.owned = false;
            if let Err(e) = self.remove_inner() {
                tracing::warn!("{}", error_chain(&e));
            }
        }
    }
}

fn thread_name(ns: &str) -> String {
    // Linux keeps 15 bytes of a thread name; keep the distinctive tail.
    let tail = ns.strip_prefix(NAME_PREFIX).unwrap_or(ns);
    format!("ns:{tail}")
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn is_netns_file(file: &File) -> bool {
    // A namespace bind mount lives on nsfs (`NSFS_MAGIC` in
    // linux/magic.h); a plain file left in /run/netns does not. Only network
    // namespaces are ever mounted there, so the file system says enough.
    const NSFS_MAGIC: FsType = FsType(0x6e73_6673);
    fstatfs(file).is_ok_and(|fs| fs.filesystem_type() == NSFS_MAGIC)
}

/// Makes a child process join a namespace before it execs.
///
/// The child gets its own `dup` of the namespace fd (close-on-exec) and calls
/// `setns(CLONE_NEWNET)` between fork and exec, so the parent never changes
/// namespace. Only the network namespace changes: the child keeps the
/// parent's mount namespace, so its `/sys/class/net` still shows the root
/// namespace (unlike `ip netns exec`, which remounts `/sys`); netlink,
/// sockets and `/proc/sys/net` follow the new namespace.
pub trait CommandExt {
    /// Arranges for the spawned child to run inside `ns`.
    fn netns(&mut self, ns: &NetNs) -> Result<&mut Self, NetnsError>;
}

fn dup_for_child(ns: &NetNs) -> Result<OwnedFd, NetnsError> {
    ns.fd()
        .try_clone_to_owned()
        .map_err(|source| NetnsError::Dup {
            name: ns.name.clone(),
            source,
        })
}

fn setns_in_child(fd: &OwnedFd) -> io::Result<()> {
    // One syscall and no allocation: safe to call between fork and exec.
    setns(fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

impl CommandExt for std::process::Command {
    fn netns(&mut self, ns: &NetNs) -> Result<&mut Self, NetnsError> {
        use std::os::unix::process::CommandExt as _;
        let fd = dup_for_child(ns)?;
        // SAFETY: pre_exec runs the closure in the forked child, where only
        // async-signal-safe work is allowed; it makes one syscall (setns) on
        // an fd it owns and allocates nothing.
        unsafe { self.pre_exec(move || setns_in_child(&fd)) };
        Ok(self)
    }
}

impl CommandExt for tokio::process::Command {
    fn netns(&mut self, ns: &NetNs) -> Result<&mut Self, NetnsError> {
        let fd = dup_for_child(ns)?;
        // SAFETY: as for std's Command above: one setns on an owned fd, no
        // allocation, in the forked child.
        unsafe { self.pre_exec(move || setns_in_child(&fd)) };
        Ok(self)
    }
}

/// Returns `cmd` set up to run inside `ns` (see [`CommandExt`]).
pub fn command_in(
    ns: &NetNs,
    mut cmd: std::process::Command,
) -> Result<std::process::Command, NetnsError> {
    cmd.netns(ns)?;
    Ok(cmd)
}

/// One lab namespace found under `/run/netns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabNamespace {
    /// The full name.
    pub name: String,
    /// The run it belongs to.
    pub run: RunId,
    /// The host part of the name (`director`, `rs1`, `bridge`, ...).
    pub host: String,
}

/// Lists the lab's namespaces (names starting with `ipvslab-`), sorted.
pub fn list_lab_namespaces() -> Result<Vec<LabNamespace>, NetnsError> {
    let dir = match fs::read_dir(NETNS_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NetnsError::State {
                op: "listing",
                path: NETNS_DIR.into(),
                source,
            });
        }
    };
    let mut found: Vec<LabNamespace> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (run, host) = parse_ns_name(&name)?;
            Some(LabNamespace { name, run, host })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// `/run/ipvslab/<run>.keep`.
pub fn keep_marker_path(run: &RunId) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{run}.keep"))
}

/// Marks `run` as kept (`lab up`): [`gc`] leaves its namespaces alone even
/// after its process is gone.
pub fn mark_kept(run: &RunId) -> Result<PathBuf, NetnsError> {
    let path = keep_marker_path(run);
    let state = |op, source| NetnsError::State {
        op,
        path: path.clone(),
        source,
    };
    fs::create_dir_all(STATE_DIR).map_err(|e| state("creating the directory of", e))?;
    fs::write(&path, b"").map_err(|e| state("writing", e))?;
    Ok(path)
}

/// Removes the keep marker of `run` (`lab down`); absent is fine.
pub fn unmark_kept(run: &RunId) -> Result<(), NetnsError> {
    let path = keep_marker_path(run);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::State {
            op: "removing",
            path,
            source,
        }),
    }
}

/// Whether `run` carries a keep marker.
pub fn is_kept(run: &RunId) -> bool {
    keep_marker_path(run).exists()
}

/// Whether process `pid` exists (EPERM counts as alive).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true,
    }
}

/// What [`gc`] did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Namespaces removed (their runs' processes were gone and not kept).
    pub removed: Vec<String>,
    /// Runs skipped because their process is alive.
    pub live: Vec<RunId>,
    /// Runs skipped because of a keep marker.
    pub kept: Vec<RunId>,
    /// Namespaces that could not be removed.
    pub failed: Vec<NetnsError>,
}

/// Removes the namespaces of every run whose process is gone, except runs
/// with a keep marker ([`mark_kept`]).
pub fn gc() -> Result<GcReport, NetnsError> {
    let mut by_run: BTreeMap<RunId, Vec<String>> = BTreeMap::new();
    for ns in list_lab_namespaces()? {
        by_run.entry(ns.run).or_default().push(ns.name);
    }
    let mut report = GcReport::default();
    for (run, names) in by_run {
        if pid_alive(run.pid()) {
            report.live.push(run);
        } else if is_kept(&run) {
            report.kept.push(run);
        } else {
            remove_all(names, &mut report);
        }
    }
    Ok(report)
}

/// Removes all namespaces of `run` regardless of pid or keep marker
/// (`lab down <run>`), and its keep marker.
pub fn remove_run(run: &RunId) -> Result<GcReport, NetnsError> {
    let names = list_lab_namespaces()?
        .into_iter()
        .filter(|ns| ns.run == *run)
        .map(|ns| ns.name)
        .collect();
    let mut report = GcReport::default();
    remove_all(names, &mut report);
    unmark_kept(run)?;
    Ok(report)
}

fn remove_all(names: Vec<String>, report: &mut GcReport) {
    // Remove the bridge last, mirroring Topology's drop order.
    let (mut names, bridge): (Vec<_>, Vec<_>) =
        names.into_iter().partition(|n| !n.ends_with("-bridge"));
    names.extend(bridge);
    for name in names {
        let removed = NetNs::open(&name)
            .or_else(|e| match e {
                // A stale, unmounted file: remove it anyway.
                NetnsError::Open { .. } => Ok(NetNs::stale(&name)),
                e => Err(e),
            })
            .and_then(NetNs::remove);
        match removed {
            Ok(()) => report.removed.push(name),
            Err(e) => report.failed.push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_round_trips() {
        let r = RunId::from_parts(4242, 17);
        assert_eq!(r.to_string(), "4242-17");
        assert_eq!("4242-17".parse::<RunId>().unwrap(), r);
        for bad in ["", "12", "12-", "-3", "a-1", "1-b", "1-2-3", "+1-2"] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?} parsed");
        }
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"4242-17\"");
        assert_eq!(serde_json::from_str::<RunId>(&json).unwrap(), r);
    }

    #[test]
    fn names_parse_back() {
        let r = RunId::from_parts(99, 3);
        let n = ns_name(&r, "client-a");
        assert_eq!(n, "ipvslab-99-3-client-a");
        assert_eq!(parse_ns_name(&n), Some((r, "client-a".to_owned())));
        assert_eq!(parse_ns_name("ipvslab-99-3-"), None);
        assert_eq!(parse_ns_name("ipvslab-99-director"), None);
        assert_eq!(parse_ns_name("other-99-3-x"), None);
    }

    #[test]
    fn run_ids_are_unique_in_process() {
        let a = RunId::new();
        let b = RunId::new();
        assert_ne!(a, b);
        assert_eq!(a.pid(), std::process::id());
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in ["", ".", "..", "a/b", &"x".repeat(200)] {
            assert!(matches!(
                NetNs::create(bad),
                Err(NetnsError::InvalidName { .. })
            ));
        }
    }
}
