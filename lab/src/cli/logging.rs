//! Diagnostics through `tracing`: warnings by default, more with `-v`/`-vv`/
//! `-vvv`, or exactly what `RUST_LOG` asks for. They go to stderr as
//! `lab: warning: ...` lines, apart from what the verbs print for people
//! (summaries, tables, JSON on stdout; the final error on stderr).
//!
//! The UML guest re-runs `lab` with the same argv, so `-v` reaches it, and
//! `RUST_LOG` is in the guest's environment allowlist (`runner::job`).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The filter for `-v` given `count` times: the lab's own events at the
/// chosen level, other crates' (h2, tonic, rtnetlink) at warn until -vvv.
pub(crate) fn directives(count: u8) -> &'static str {
    match count {
        0 => "warn",
        1 => "warn,lab=info",
        2 => "warn,lab=debug",
        _ => "info,lab=trace",
    }
}

/// `RUST_LOG` when it is set and parses, else the `-v` level; a `RUST_LOG`
/// that does not parse is said, not silently dropped.
fn filter(verbose: u8) -> (EnvFilter, Option<String>) {
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(directives(verbose)),
                Some(format!("ignoring RUST_LOG={spec:?}: {e}")),
            ),
        },
        _ => (EnvFilter::new(directives(verbose)), None),
    }
}

/// Installs the subscriber for this process; call once, before any verb.
pub(crate) fn init(verbose: u8) {
    let (filter, bad) = filter(verbose);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(LabLine)
        .try_init();
    if let Some(bad) = bad {
        tracing::warn!("{bad}");
    }
}

/// One plain line per event: `lab: warning: message`, and for debug and
/// trace also the module it came from, `lab: debug: lab::netns: message`.
struct LabLine;

/// The word for a level, as people write it.
fn word(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl<S, N> FormatEvent<S, N> for LabLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(writer, "lab: {}: ", word(meta.level()))?;
        if *meta.level() > Level::INFO {
            write!(writer, "{}: ", meta.target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_v_raises_the_lab_level_only() {
        assert_eq!(directives(0), "warn");
        assert_eq!(directives(1), "warn,lab=info");
        assert_eq!(directives(2), "warn,lab=debug");
        assert_eq!(directives(9), "info,lab=trace");
        for n in 0..4 {
            EnvFilter::try_new(directives(n)).expect("a valid filter");
        }
    }

    #[test]
    fn levels_read_as_words() {
        assert_eq!(word(&Level::WARN), "warning");
        assert_eq!(word(&Level::DEBUG), "debug");
    }
}
