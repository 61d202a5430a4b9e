//! What a run shows on stderr while it goes: a spinner line redrawn in
//! place on a terminal (indicatif), one plain line about once a second in
//! logs, or nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use bench::loadgen::ProgressLine;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// One line redrawn in place.
    Tty,
    /// A line per second, for logs.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// `Tty` when stderr is a terminal (or the host said so before booting
    /// the UML guest, whose console always looks like one), else `Lines`.
    pub fn detect() -> Self {
        match std::env::var(crate::runner::STDERR_TTY_ENV).as_deref() {
            Ok("1") => Progress::Tty,
            Ok(_) => Progress::Lines,
            Err(_) if std::io::stderr().is_terminal() => Progress::Tty,
            Err(_) => Progress::Lines,
        }
    }
}

/// The least time between two plain lines.
const LINE_EVERY: Duration = Duration::from_millis(950);

/// The run's status display.
pub(super) struct Status {
    shown: Shown,
    scenario: String,
    last_line: Option<Instant>,
}

enum Shown {
    Spinner(ProgressBar),
    Lines,
    Quiet,
}

impl Status {
    /// A display for `scenario` in the chosen mode.
    pub(super) fn new(progress: Progress, scenario: &str) -> Self {
        let shown = match progress {
            Progress::Tty => Shown::Spinner(spinner(scenario)),
            Progress::Lines => Shown::Lines,
            Progress::Quiet => Shown::Quiet,
        };
        Status {
            shown,
            scenario: scenario.to_owned(),
            last_line: None,
        }
    }

    /// A new stage: always shown.
    pub(super) fn say(&mut self, text: &str) {
        match &self.shown {
            Shown::Spinner(bar) => bar.set_message(text.to_owned()),
            Shown::Lines => eprintln!("[{}] {text}", self.scenario),
            Shown::Quiet => {}
        }
    }

    /// Progress within a stage: on a terminal at once, in logs at most
    /// about once a second.
    pub(super) fn tick(&mut self, text: &str) {
        if matches!(self.shown, Shown::Lines)
            && self.last_line.is_some_and(|t| t.elapsed() < LINE_EVERY)
        {
            return;
        }
        self.last_line = Some(Instant::now());
        self.say(text);
    }

    /// Prints `text` as is, above the spinner when there is one.
    pub(super) fn print(&self, text: &str) {
        match &self.shown {
            Shown::Spinner(bar) => bar.suspend(|| eprint!("{text}")),
            Shown::Lines | Shown::Quiet => eprint!("{text}"),
        }
    }

    /// Removes the spinner line.
    pub(super) fn done(&mut self) {
        if let Shown::Spinner(bar) = &self.shown {
            bar.finish_and_clear();
        }
    }
}

/// A spinner drawn on stderr even when stderr does not look like a
/// terminal: [`Progress::detect`] already decided, and the UML guest's
/// console is judged by the host.
fn spinner(scenario: &str) -> ProgressBar {
    let target =
        ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::buffered_stderr()), 10);
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{prefix}] {msg}").expect("the template is valid"),
    );
    bar.set_prefix(scenario.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// One progress line of the load generator as the status shows it:
/// `measure 3.2s  1234 rpcs  385/s  0 errors  rs1 50% rs2 50%`.
pub(super) fn render_progress(p: &ProgressLine) -> String {
    let total: u64 = p.servers.values().sum();
    let mut shares = String::new();
    for (name, n) in &p.servers {
        let pct = if total > 0 {
            100.0 * *n as f64 / total as f64
        } else {
            0.0
        };
        shares.push_str(&format!(" {name} {pct:.0}%"));
    }
    format!(
        "{} {:.1}s  {} rpcs  {:.0}/s  {} errors {shares}",
        p.phase, p.elapsed_s, p.rpcs, p.rate, p.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_renders_its_counts_and_shares() {
        let line: ProgressLine = serde_json::from_str(
            r#"{"elapsed_s": 3.26, "phase": "measure", "rpcs": 1200, "errors": 2,
                "rate": 384.6, "servers": {"rs1": 300, "rs2": 900}}"#,
        )
        .unwrap();
        assert_eq!(
            render_progress(&line),
            "measure 3.3s  1200 rpcs  385/s  2 errors  rs1 25% rs2 75%"
        );
    }

    #[test]
    fn no_rpcs_yet_renders_zero_shares() {
        let line = ProgressLine {
            elapsed_s: 0.0,
            phase: bench::loadgen::Phase::Warmup,
            rpcs: 0,
            errors: 0,
            rate: 0.0,
            servers: [("rs1".to_string(), 0)].into(),
            round: 0,
        };
        assert_eq!(
            render_progress(&line),
            "warmup 0.0s  0 rpcs  0/s  0 errors  rs1 0%"
        );
    }
}
