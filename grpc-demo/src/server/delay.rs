//! The response delay model of `--delay` (`none`, `fixed:5ms`,
//! `uniform:1ms..5ms`, `exp:2ms`): parsed, written back, sampled per call.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::duration::parse_duration;

/// Response delay model, applied to every `WhoAmI` before it answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    /// Answer at once.
    None,
    /// Always wait this long.
    Fixed(Duration),
    /// Wait a uniformly random time in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Wait an exponentially distributed time with this mean (a memoryless
    /// service time, the classic M/M/1 model).
    Exponential {
        /// Mean delay.
        mean: Duration,
    },
}

/// Why a `--delay` value was rejected.
#[derive(Debug, thiserror::Error)]
#[error("invalid delay {0:?}: expected none, fixed:5ms, uniform:1ms..5ms or exp:2ms")]
pub struct DelayParseError(String);

impl FromStr for Delay {
    type Err = DelayParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DelayParseError(s.to_string());
        if s == "none" {
            return Ok(Delay::None);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(err)?;
        let d = |v: &str| parse_duration(v).map_err(|_| err());
        match kind {
            "fixed" => Ok(Delay::Fixed(d(rest)?)),
            "uniform" => {
                let (a, b) = rest.split_once("..").ok_or_else(err)?;
                let (min, max) = (d(a)?, d(b)?);
                if min > max {
                    return Err(err());
                }
                Ok(Delay::Uniform { min, max })
            }
            "exp" | "exponential" => Ok(Delay::Exponential { mean: d(rest)? }),
            _ => Err(err()),
        }
    }
}

/// The `--delay` syntax that [`Delay::from_str`] reads back.
impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = humantime::format_duration;
        match *self {
            Delay::None => f.write_str("none"),
            Delay::Fixed(d) => write!(f, "fixed:{}", human(d)),
            Delay::Uniform { min, max } => write!(f, "uniform:{}..{}", human(min), human(max)),
            Delay::Exponential { mean } => write!(f, "exp:{}", human(mean)),
        }
    }
}

impl Delay {
    pub(super) fn sample(&self) -> Option<Duration> {
        match *self {
            Delay::None => None,
            Delay::Fixed(d) => Some(d),
            Delay::Uniform { min, max } => {
                let span = (max - min).as_secs_f64();
                Some(min + Duration::from_secs_f64(span * rand::random::<f64>()))
            }
            Delay::Exponential { mean } => {
                let u: f64 = rand::random::<f64>();
                Some(Duration::from_secs_f64(
                    -mean.as_secs_f64() * (1.0 - u).ln(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_syntax() {
        assert_eq!("none".parse::<Delay>().unwrap(), Delay::None);
        assert_eq!(
            "fixed:5ms".parse::<Delay>().unwrap(),
            Delay::Fixed(Duration::from_millis(5))
        );
        assert_eq!(
            "uniform:1ms..3ms".parse::<Delay>().unwrap(),
            Delay::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(3)
            }
        );
        assert!("uniform:3ms..1ms".parse::<Delay>().is_err());
        assert!("exp:2ms".parse::<Delay>().is_ok());
        assert!("gauss:2ms".parse::<Delay>().is_err());
    }

    #[test]
    fn delay_display_reads_back() {
        for d in [
            Delay::None,
            Delay::Fixed(Duration::from_micros(1500)),
            Delay::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(1500),
            },
            Delay::Exponential {
                mean: Duration::from_millis(2),
            },
        ] {
            assert_eq!(d.to_string().parse::<Delay>().unwrap(), d, "{d}");
        }
    }

    #[test]
    fn delay_samples_stay_in_bounds() {
        let d = Delay::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        for _ in 0..1000 {
            let s = d.sample().unwrap();
            assert!(s >= Duration::from_millis(1) && s <= Duration::from_millis(2));
        }
    }
}
