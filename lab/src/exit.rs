//! Exit codes that scripts can rely on (sysexits.h where one fits).

/// Every expectation held / the command did what it was asked.
pub const OK: u8 = 0;
/// A scenario ran but at least one expectation failed, or a command failed.
pub const FAILED: u8 = 1;
/// The command line was wrong (`EX_USAGE`).
pub const USAGE: u8 = grpc_demo::cli::EX_USAGE;
/// A scenario or configuration file is malformed or invalid (`EX_DATAERR`).
pub const BAD_SCENARIO: u8 = 65;
/// A required program or kernel feature is missing (`EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;
/// An operating-system call failed (`EX_OSERR`).
pub const OS_ERROR: u8 = 71;
/// An output file or folder cannot be created or written (`EX_CANTCREAT`).
pub const CANT_CREATE: u8 = 73;
/// The lab lacks root / CAP_NET_ADMIN (`EX_NOPERM`).
pub const NO_PERMISSION: u8 = 77;
/// The run was interrupted by SIGINT, SIGTERM or SIGHUP (128 + SIGINT, as
/// shells report a Ctrl-C).
pub const INTERRUPTED: u8 = 130;
