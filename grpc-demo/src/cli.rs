//! Command-line conventions shared by the workspace's binaries
//! (`grpc-demo-server`, `loadgen`, `lab`).

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
