//! `loadgen`: thin wrapper over [`bench::loadgen::main_with_args`].

// A binary links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]
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
    match grpc_demo::cli::parse_or_usage::<Cli>() {
        Ok(cli) => bench::loadgen::main_with_args(cli.args),
        Err(code) => code,
    }
}
