//! How a verb fails: an exit code from [`lab::exit`] and the error under it,
//! printed in one place ([`print()`]) with its whole cause chain, so that the
//! errno or parse error at the bottom, usually the part that says what to
//! fix, is never lost.

use std::error::Error;
use std::fmt;

use lab::exit;
use lab::runner::RunnerError;
use lab::scenario::ScenarioError;
use lab::scenario::run::RunError;

/// What went wrong, worded by whoever found it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cause {
    /// The CLI's own finding (a usage error, an unknown host): nothing below it.
    #[error("{0}")]
    Said(String),
    /// A library error, shown as it words itself, with its sources.
    #[error(transparent)]
    Lib(Box<dyn Error + 'static>),
    /// A library error under a sentence saying what the CLI was doing.
    #[error("{doing}")]
    While {
        /// What the CLI was doing, e.g. `cannot write report.json`.
        doing: String,
        /// The error that stopped it.
        #[source]
        source: Box<dyn Error + 'static>,
    },
}

/// A failed verb: the exit code scripts see and the cause people read.
/// Displays as its cause, and its sources are the cause's sources.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The exit code (one of [`lab::exit`]'s).
    pub(crate) code: u8,
    /// What went wrong.
    pub(crate) cause: Cause,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cause.fmt(f)
    }
}

impl Error for CliError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.source()
    }
}

impl CliError {
    /// A failure the CLI words itself.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            cause: Cause::Said(message.into()),
        }
    }

    /// A usage error (64): the command line asked for something impossible.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// A library error exiting with `code`.
    pub(crate) fn from_error(code: u8, e: impl Error + 'static) -> Self {
        Self {
            code,
            cause: Cause::Lib(Box::new(e)),
        }
    }

    /// A library error under `doing`, exiting with `code`.
    pub(crate) fn context(code: u8, doing: impl Into<String>, e: impl Error + 'static) -> Self {
        Self {
            code,
            cause: Cause::While {
                doing: doing.into(),
                source: Box::new(e),
            },
        }
    }

    /// The same failure with another exit code.
    pub(crate) fn with_code(self, code: u8) -> Self {
        Self { code, ..self }
    }
}

/// The exit code for a runner error: a missing kernel feature is 69, a
/// nested UML a usage error, an interrupt 130, anything else an OS error.
pub(crate) fn runner_error_code(e: &RunnerError) -> u8 {
    match e {
        RunnerError::Interrupted => exit::INTERRUPTED,
        RunnerError::NoIpvsNoUml { .. }
        | RunnerError::HostHasNoIpvs { .. }
        | RunnerError::UmlModulesMissing { .. }
        | RunnerError::BadKernel { .. }
        | RunnerError::NoStatus { .. }
        | RunnerError::NoTimeTravel { .. }
        | RunnerError::TimeTravelOnHost { .. } => exit::UNAVAILABLE,
        RunnerError::NestedUml => exit::USAGE,
        _ => exit::OS_ERROR,
    }
}

impl From<RunnerError> for CliError {
    fn from(e: RunnerError) -> Self {
        Self::from_error(runner_error_code(&e), e)
    }
}

/// A scenario that is not there is a usage error (64); one that is there but
/// wrong is bad input (65).
impl From<ScenarioError> for CliError {
    fn from(e: ScenarioError) -> Self {
        let code = match e {
            ScenarioError::NotFound { .. } => exit::USAGE,
            _ => exit::BAD_SCENARIO,
        };
        Self::from_error(code, e)
    }
}

/// Maps a library `Result` onto a verb's, choosing the exit code where the
/// error is met.
pub(crate) trait ExitOnError<T> {
    /// The error exits with `code`.
    fn or_exit(self, code: u8) -> Result<T, CliError>;
    /// The error exits with `code`, under the sentence `doing` builds.
    fn or_exit_while(self, code: u8, doing: impl FnOnce() -> String) -> Result<T, CliError>;
}

impl<T, E: Error + 'static> ExitOnError<T> for Result<T, E> {
    fn or_exit(self, code: u8) -> Result<T, CliError> {
        self.map_err(|e| CliError::from_error(code, e))
    }

    fn or_exit_while(self, code: u8, doing: impl FnOnce() -> String) -> Result<T, CliError> {
        self.map_err(|e| CliError::context(code, doing(), e))
    }
}

/// A scenario that failed to run: 130 when interrupted, else 1.
pub(crate) fn run_failed(scenario: &str, e: RunError) -> CliError {
    let code = match e {
        RunError::Interrupted => exit::INTERRUPTED,
        RunError::CommandNotFound { .. } => exit::BAD_SCENARIO,
        RunError::ServerNotReady { .. } => exit::UNAVAILABLE,
        _ => exit::FAILED,
    };
    CliError::context(code, format!("scenario {scenario} failed to run"), e)
}

/// `a: b: c`, the error and each of its sources.
pub(crate) fn chain(e: &dyn Error) -> String {
    lab::error_chain(e)
}

/// The one place a failed verb is printed: `lab: ` and the whole chain on
/// stderr.
pub(crate) fn print(e: &CliError) {
    eprintln!("lab: {}", chain(e));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("removing namespace ipvslab-1-2-director failed")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }

    fn errno() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EBUSY)
    }

    #[test]
    fn a_library_error_keeps_its_errno() {
        let e = CliError::from_error(exit::OS_ERROR, Outer { source: errno() });
        assert_eq!(e.code, exit::OS_ERROR);
        let text = chain(&e);
        assert!(
            text.starts_with("removing namespace ipvslab-1-2-director failed: "),
            "{text}"
        );
        assert!(text.contains("busy"), "the errno is lost: {text}");
    }

    #[test]
    fn context_sits_above_the_whole_chain() {
        let e = Err::<(), _>(Outer { source: errno() })
            .or_exit_while(exit::CANT_CREATE, || "cannot write r.json".into())
            .unwrap_err();
        assert_eq!(e.code, exit::CANT_CREATE);
        let text = chain(&e);
        assert!(
            text.starts_with("cannot write r.json: removing namespace"),
            "{text}"
        );
        assert!(text.contains("busy"), "{text}");
    }

    #[test]
    fn own_messages_stand_alone_and_codes_follow_the_error() {
        let e = CliError::usage("no host 'x'");
        assert_eq!((e.code, chain(&e)), (exit::USAGE, "no host 'x'".into()));
        assert_eq!(e.with_code(exit::INTERRUPTED).code, 130);
        let missing: CliError = ScenarioError::NotFound {
            name: "nope".into(),
            tried: "scenarios/nope.toml".into(),
            dir: "scenarios".into(),
        }
        .into();
        assert_eq!(missing.code, exit::USAGE);
        assert_eq!(CliError::from(RunnerError::NestedUml).code, exit::USAGE);
        assert_eq!(
            CliError::from(RunnerError::Interrupted).code,
            exit::INTERRUPTED
        );
    }
}
