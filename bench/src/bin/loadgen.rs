//! `loadgen`: thin wrapper over [`bench::loadgen::main_with_args`].
use clap::Parser;
use std::process::ExitCode;

/// gRPC load generator for ipvs-lab: who answered, over which connection,
/// from which source address, and how fast.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version, about)]
struct Cli {
    #[command(flatten)]
    args: bench::loadgen::LoadgenArgs,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Bad flags are a usage error (EX_USAGE).
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    bench::loadgen::main_with_args(cli.args)
}
