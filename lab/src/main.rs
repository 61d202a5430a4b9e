//! The `lab` binary: parses the command line, sets up logging, runs the
//! verb (in [`cli`]) and prints its error, if any, in this one place. The
//! work lives in the library.

// The binary links every dependency of the package; unused ones are caught
// in the library.
#![allow(unused_crate_dependencies)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    lab::runner::guest::become_init_if_guest();
    let args = match grpc_demo::cli::parse_or_usage::<cli::args::Cli>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    cli::logging::init(args.verbose);
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            cli::error::print(&e);
            ExitCode::from(e.code)
        }
    }
}
