//! `grpc-demo-server`: thin wrapper over [`grpc_demo::server::main_with_args`].

// A binary links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]
use clap::Parser;
use std::process::ExitCode;

/// Identity-tagged gRPC demo server for ipvs-lab.
#[derive(Parser, Debug)]
#[command(name = "grpc-demo-server", version, about)]
struct Cli {
    #[command(flatten)]
    args: grpc_demo::server::ServerArgs,
}

fn main() -> ExitCode {
    match grpc_demo::cli::parse_or_usage::<Cli>() {
        Ok(cli) => grpc_demo::server::main_with_args(cli.args),
        Err(code) => code,
    }
}
