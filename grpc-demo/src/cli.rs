//! Command-line conventions shared by the workspace's binaries
//! (`grpc-demo-server`, `loadgen`, `lab`): usage errors, `--threads`.

use std::process::ExitCode;

/// Exit code of a command-line usage error (`EX_USAGE` in sysexits.h).
pub const EX_USAGE: u8 = 64;

/// Parses the process arguments into `C`. Bad flags print clap's message and
/// yield `EX_USAGE` (clap's own default is 2), so every binary of the lab
/// reports usage errors the same way; `--help` and `--version` print and
/// yield success.
pub fn parse_or_usage<C: clap::Parser>() -> Result<C, ExitCode> {
    C::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EX_USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The tokio runtime for `--threads N`: tokio's current-thread runtime for
/// one thread (it does better than the multi-thread one in the lab's
/// one-CPU User-Mode Linux guest), else a multi-thread runtime with N workers.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// Parses `argv` (without the program name) into the flags struct `A`, as
/// the binary `name` would: the way to get a value with every default from
/// the one place that declares them, and to check that `to_args` reads back.
pub fn parse_args<A, I, T>(name: &'static str, argv: I) -> Result<A, clap::Error>
where
    A: clap::Args + clap::FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    let command = A::augment_args(clap::Command::new(name));
    let argv =
        std::iter::once(std::ffi::OsString::from(name)).chain(argv.into_iter().map(Into::into));
    A::from_arg_matches(&command.try_get_matches_from(argv)?)
}
