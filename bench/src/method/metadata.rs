//! `--metadata KEY=VALUE`: request headers, checked and converted once so
//! that every call only clones them (reference counts, no parsing).

use http::{HeaderName, HeaderValue};

/// Headers that gRPC or HTTP/2 itself sets; overriding them would break
/// the call, not describe it.
const RESERVED: [&str; 5] = [
    "content-type",
    "te",
    "grpc-timeout",
    "grpc-encoding",
    "host",
];

/// A `--metadata` that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// No `=`.
    #[error("--metadata {0:?} is not KEY=VALUE (for example --metadata x-user=lab)")]
    NoEquals(String),
    /// Not a valid header name.
    #[error(
        "--metadata key {0:?} is not a valid gRPC metadata key: use lower-case letters, digits, '-', '_' and '.'"
    )]
    BadKey(String),
    /// Not a valid header value.
    #[error(
        "--metadata {key}: the value must be printable ASCII (binary metadata needs a -bin key)"
    )]
    BadValue {
        /// The key.
        key: String,
    },
    /// A key the protocol owns.
    #[error("--metadata {0}: this header is set by loadgen itself (the deadline is --timeout)")]
    Reserved(String),
}

/// Parses `KEY=VALUE` pairs into header names and values.
pub fn parse_metadata(pairs: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>, MetadataError> {
    pairs
        .iter()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| MetadataError::NoEquals(pair.clone()))?;
            let valid_key = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
            if !valid_key || key.starts_with("grpc-") && !RESERVED.contains(&key) {
                return Err(MetadataError::BadKey(key.to_string()));
            }
            if RESERVED.contains(&key) {
                return Err(MetadataError::Reserved(key.to_string()));
            }
            let name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| MetadataError::BadKey(key.to_string()))?;
            let value = HeaderValue::from_str(value).map_err(|_| MetadataError::BadValue {
                key: key.to_string(),
            })?;
            Ok((name, value))
        })
        .collect()
}

/// gRPC's `grpc-timeout` header for a deadline: at most 8 digits and a
/// unit, as the spec requires, rounded up so the server never sees a
/// shorter deadline than the client's.
pub fn grpc_timeout(timeout: std::time::Duration) -> HeaderValue {
    let micros = timeout.as_micros();
    let (value, unit) = [
        (1u128, "u"),
        (1_000, "m"),
        (1_000_000, "S"),
        (60_000_000, "M"),
    ]
    .into_iter()
    .map(|(per, unit)| (micros.div_ceil(per), unit))
    .find(|(v, _)| *v < 100_000_000)
    .unwrap_or((micros.div_ceil(3_600_000_000).min(99_999_999), "H"));
    HeaderValue::from_str(&format!("{value}{unit}")).expect("digits and a unit letter")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pairs_parse() {
        let m = parse_metadata(&["x-user=lab".into(), "x-empty=".into(), "a=b=c".into()]).unwrap();
        assert_eq!(m[0].0, "x-user");
        assert_eq!(m[0].1, "lab");
        assert_eq!(m[1].1, "");
        assert_eq!(m[2].1, "b=c");
    }

    #[test]
    fn bad_pairs_are_refused() {
        assert!(matches!(
            parse_metadata(&["x".into()]),
            Err(MetadataError::NoEquals(_))
        ));
        assert!(matches!(
            parse_metadata(&["X-User=a".into()]),
            Err(MetadataError::BadKey(_))
        ));
        assert!(matches!(
            parse_metadata(&["=a".into()]),
            Err(MetadataError::BadKey(_))
        ));
        assert!(matches!(
            parse_metadata(&["grpc-foo=a".into()]),
            Err(MetadataError::BadKey(_))
        ));
        assert!(matches!(
            parse_metadata(&["te=x".into()]),
            Err(MetadataError::Reserved(_))
        ));
        assert!(matches!(
            parse_metadata(&["x-a=\u{7}".into()]),
            Err(MetadataError::BadValue { .. })
        ));
    }

    #[test]
    fn timeouts_fit_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(5)), "5000u");
        assert_eq!(grpc_timeout(Duration::from_secs(5)), "5000000u");
        assert_eq!(grpc_timeout(Duration::from_secs(500)), "500000m");
        assert_eq!(grpc_timeout(Duration::from_secs(3 * 86_400)), "259200S");
    }
}
