//! `lab exec` and `lab shell`: bring up a scenario's network, IPVS and gRPC
//! servers, run a command (or a shell) in one host's namespace, tear down.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lab::exit;
use lab::netns::RunId;
use lab::network::LabNetwork;
use lab::runner::{self, RunnerChoice};
use lab::scenario::run::{Progress, RunOptions, Services};
use lab::scenario::spec::TimeMode;
use lab::scenario::{Scenario, plan};

use super::RUN_ENV;
use super::error::{CliError, ExitOnError, chain};
use super::prepare::{Prepared, bring_up, interrupt_flag, prepare};

/// Runs `cmd` in host `host` of scenario `name`; exits with the command's
/// own exit code (128 + signal when it was killed).
pub(crate) fn exec(
    choice: RunnerChoice,
    name: &str,
    host: &str,
    cmd: Vec<OsString>,
    interactive: bool,
) -> Result<ExitCode, CliError> {
    let scenario = Scenario::load(name)?;
    scenario.check_commands()?;
    check_host(&scenario, host)?;
    let shared = super::scenario::command_tmp_paths(&scenario);
    if let Prepared::Done(code) = prepare(choice, interactive, &shared, &[TimeMode::Real])? {
        return Ok(code);
    }
    let interrupted = interrupt_flag();
    let run = RunId::new();
    let lab = bring_up(&scenario, run)?;
    // The same servers and director manager as `lab scenario`.
    let opts = RunOptions {
        duration: None,
        progress: Progress::Quiet,
        interrupted: Arc::clone(&interrupted),
        director: None,
    };
    let services = match Services::start(&scenario, &opts, &lab) {
        Ok(s) => s,
        Err(e) => {
            let _ = lab.teardown();
            return Err(super::error::run_failed(&scenario.name, e));
        }
    };
    tracing::info!("servers up; IPVS managed by {}", services.director_kind());
    let code = run_in_host(&lab, host, cmd, run, &interrupted, interactive);
    for (name, tail) in services.stop() {
        eprintln!("lab: {name}:\n{tail}");
    }
    if let Err(e) = lab.teardown() {
        // The command's own result is the verb's; a teardown that went
        // wrong is worth knowing but does not change it.
        tracing::warn!("teardown: {}", chain(&e));
    }
    code.map(ExitCode::from)
}

/// `lab shell`: `exec` with `$SHELL` (or /bin/sh), interactive.
pub(crate) fn shell(choice: RunnerChoice, name: &str, host: &str) -> Result<ExitCode, CliError> {
    let shell = std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into());
    exec(choice, name, host, vec![shell], true)
}

/// The host must be one the scenario builds: director, client1, rs1, ...
fn check_host(scenario: &Scenario, host: &str) -> Result<(), CliError> {
    let hosts: Vec<String> = ["director".to_string(), plan::CLIENT_HOST.to_string()]
        .into_iter()
        .chain(scenario.server_names())
        .collect();
    if hosts.iter().any(|h| h == host) {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "no host '{host}' in scenario {} (hosts: {})",
            scenario.name,
            hosts.join(", ")
        )))
    }
}

/// Runs the command in `host`'s namespace and waits for it; the exit code
/// is the command's.
fn run_in_host(
    lab: &LabNetwork,
    host: &str,
    cmd: Vec<OsString>,
    run: RunId,
    interrupted: &AtomicBool,
    interactive: bool,
) -> Result<u8, CliError> {
    use lab::netns::CommandExt;
    let ns = lab.ns(host).or_exit(exit::USAGE)?;
    let (program, rest) = cmd
        .split_first()
        .ok_or_else(|| CliError::usage("no command given"))?;
    let mut command = Command::new(program);
    command
        .args(rest)
        .env(RUN_ENV, run.to_string())
        .env("IPVSLAB_HOST", host)
        .env("PS1", format!("[ipvs-lab {host}] \\w# "));
    command.netns(ns).or_exit(exit::OS_ERROR)?;
    if interactive && runner::in_guest() {
        give_the_guest_console(&mut command);
    }
    let child = command.spawn().or_exit_while(exit::UNAVAILABLE, || {
        format!("cannot run {}", Path::new(program).display())
    })?;
    wait(child, interrupted)
}

/// In the UML guest the lab's stdin is con0 (/dev/tty0) without a session
/// to control it. Gives the shell a session of its own with that tty as its
/// controlling terminal, with the usual line discipline, so it has job
/// control, echo and CR/LF handling, and Ctrl-C reaches its foreground job.
fn give_the_guest_console(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            let fd = libc::open(c"/dev/tty0".as_ptr(), libc::O_RDWR);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::ioctl(fd, libc::TIOCSCTTY, 1);
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) == 0 {
                t.c_iflag |= libc::ICRNL;
                t.c_oflag |= libc::OPOST | libc::ONLCR;
                t.c_lflag |= libc::ICANON
                    | libc::ECHO
                    | libc::ECHOE
                    | libc::ECHOK
                    | libc::ISIG
                    | libc::IEXTEN;
                libc::tcsetattr(fd, libc::TCSANOW, &t);
            }
            for target in 0..3 {
                libc::dup2(fd, target);
            }
            if fd > 2 {
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// Waits for the command; on an interrupt, makes sure it is gone (130).
fn wait(mut child: Child, interrupted: &AtomicBool) -> Result<u8, CliError> {
    loop {
        if let Some(status) = child.try_wait().or_exit(exit::OS_ERROR)? {
            use std::os::unix::process::ExitStatusExt;
            return Ok(status
                .code()
                .map(|c| c.clamp(0, 255) as u8)
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0) as u8));
        }
        if interrupted.load(Ordering::SeqCst) {
            // The command got the same signal from the terminal; give it a
            // moment, then make sure it is gone before tearing down.
            std::thread::sleep(Duration::from_millis(200));
            let _ = child.kill();
            let _ = child.wait();
            return Ok(exit::INTERRUPTED);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
