//! `grpc-demo-server`: thin wrapper over [`grpc_demo::server::main_with_args`].
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Bad flags are a usage error (EX_USAGE), as everywhere in the lab.
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    grpc_demo::server::main_with_args(cli.args)
}
