//! The `lab` command line: parses arguments and dispatches; the work lives in
//! the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lab::runner::{self, RunnerChoice};

/// ipvs-lab: build a namespace network with real Linux IPVS in direct-routing
/// mode in front of gRPC servers, and measure how it distributes, pins and
/// serves traffic.
#[derive(Parser, Debug)]
#[command(name = "lab", version, about, long_about = None)]
struct Cli {
    /// Which kernel runs the lab: the host's when it has IPVS, else User-Mode
    /// Linux (auto); or force one.
    #[arg(long, value_enum, default_value_t = RunnerChoice::Auto, global = true)]
    runner: RunnerChoice,
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Run a command inside the lab's User-Mode Linux guest (IPVS loaded), no network built.
    #[command(hide = true)]
    GuestRun {
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    runner::guest::become_init_if_guest();
    let cli = Cli::parse();
    match cli.command {
        Verb::GuestRun { cmd } => {
            let kernel = match runner::uml::UmlKernel::locate() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("lab: {e}");
                    return ExitCode::from(lab::exit::UNAVAILABLE);
                }
            };
            let job = runner::job::GuestJob::here(cmd).expect("cwd");
            let exe = std::env::current_exe().expect("current exe");
            match runner::uml::run(&kernel, &job, &runner::uml::UmlOptions::new(exe)) {
                Ok(o) => {
                    eprintln!(
                        "lab: guest ready after {:?}, total {:?}",
                        o.boot_to_ready, o.total
                    );
                    ExitCode::from(o.exit_code.clamp(0, 255) as u8)
                }
                Err(e) => {
                    eprintln!("lab: {e}");
                    ExitCode::from(lab::exit::OS_ERROR)
                }
            }
        }
    }
}
