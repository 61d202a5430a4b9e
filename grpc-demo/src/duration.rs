//! The one duration syntax of the workspace's command lines: humantime's
//! (`250us`, `500ms`, `2s`, `1.5s`, `1m`, `1m 30s`), the same that
//! `lab scenario --duration` and the scenario files use.
//!
//! One extension keeps older invocations working: a bare number means
//! seconds (`3` = `3s`), as the hand-written parser this replaces accepted.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid duration {input:?}: expected a number with a unit such as us, ms, s, m or h (e.g. 500ms, 2s, 1m 30s)"
)]
pub struct DurationParseError {
    /// The rejected text.
    pub input: String,
}

/// Parses a humantime duration; a bare (possibly fractional) number is
/// taken as seconds.
pub fn parse_duration(input: &str) -> Result<Duration, DurationParseError> {
    let err = || DurationParseError {
        input: input.to_string(),
    };
    let s = input.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(d);
    }
    let bare_number = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !bare_number {
        return Err(err());
    }
    let secs: f64 = s.parse().map_err(|_| err())?;
    Duration::try_from_secs_f64(secs).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("250µs").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1min").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration(" 2s ").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn accepts_what_lab_scenario_duration_accepts() {
        for text in ["1m 30s", "1h", "90s", "1500ms", "2min"] {
            assert_eq!(
                parse_duration(text).unwrap(),
                humantime::parse_duration(text).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "ms", "5x", "-1s", "1..2s", ".", "1.2.3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
