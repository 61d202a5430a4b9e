//! Latency histograms: HdrHistogram's percentile-distribution text format
//! (`latency.hgrm`, the file HdrHistogram's online plotter reads), the
//! base64 V2 encoding the load generator stores, and percentile summaries.
//!
//! The histogram records microseconds; `latency.hgrm` is written in
//! milliseconds (output scaling ratio 1000), the unit people plot.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

use super::error::ReportError;
use super::model::LatencySummary;

/// Microseconds per millisecond: the output scaling ratio of `latency.hgrm`.
pub const US_PER_MS: f64 = 1000.0;

/// Percentile ticks per half distance, HdrHistogram's default (5).
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Formats `hist` (µs) as HdrHistogram's `outputPercentileDistribution` text
/// with values in ms: a `Value Percentile TotalCount 1/(1-Percentile)` table
/// and the `#[Mean ...]`, `#[Max ...]`, `#[Buckets ...]` footer, byte for byte
/// the layout of the Java implementation, so existing tools read it.
pub fn format_hgrm(hist: &Histogram<u64>, scaling_ratio: f64) -> String {
    let digits = usize::from(hist.sigfig());
    let mut out = String::new();
    out.push_str(&format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    ));
    if !hist.is_empty() {
        let mut total: u64 = 0;
        for v in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / scaling_ratio;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                out.push_str(&format!(
                    "{value:12.digits$} {q:2.12} {total:10} {:14.2}\n",
                    1.0 / (1.0 - q)
                ));
            } else {
                out.push_str(&format!("{value:12.digits$} {q:2.12} {total:10}\n"));
            }
        }
    }
    let mean = hist.mean() / scaling_ratio;
    let stdev = hist.stdev() / scaling_ratio;
    let max = hist.max() as f64 / scaling_ratio;
    out.push_str(&format!(
        "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]\n"
    ));
    out.push_str(&format!(
        "#[Max     = {max:12.digits$}, Total count    = {:12}]\n",
        hist.len()
    ));
    out.push_str(&format!(
        "#[Buckets = {:12}, SubBuckets     = {:12}]\n",
        hist.buckets(),
        sub_bucket_count(hist.sigfig())
    ));
    out
}

/// HdrHistogram's sub-bucket count for a precision: the smallest power of two
/// that holds `2 · 10^sigfig` values with unit resolution.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
    let magnitude = (largest_single_unit as f64).log2().ceil() as u32;
    1u64 << magnitude.max(1)
}

/// Decodes a histogram from base64 of HdrHistogram's V2 encoding, compressed
/// (V2+deflate, what `V2DeflateSerializer` writes) or not; the cookie says which.
pub fn decode_histogram_b64(b64: &str) -> Result<Histogram<u64>, ReportError> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|source| ReportError::HistogramBase64 { source })?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|source| ReportError::HistogramDecode { source })
}

/// Encodes a histogram as base64 of V2+deflate, the form `histogram_b64` holds.
pub fn encode_histogram_b64(hist: &Histogram<u64>) -> Result<String, ReportError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut bytes)
        .map_err(|source| ReportError::HistogramEncode { source })?;
    Ok(STANDARD.encode(bytes))
}

/// The percentiles the report shows, from a histogram of microseconds
/// (`histogram_b64` left empty: fill it with [`encode_histogram_b64`] to keep
/// the whole distribution in `report.json`).
pub fn latency_summary(hist: &Histogram<u64>) -> LatencySummary {
    if hist.is_empty() {
        return LatencySummary::default();
    }
    let at = |q: f64| hist.value_at_quantile(q) as f64;
    LatencySummary {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        p999: at(0.999),
        max: hist.max() as f64,
        mean: hist.mean(),
        count: hist.len(),
        histogram_b64: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::V2Serializer;

    fn sample() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn hgrm_layout_matches_hdrhistogram() {
        let text = format_hgrm(&sample(), US_PER_MS);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First row: the smallest value, 1 µs = 0.001 ms.
        assert_eq!(
            lines[2],
            "       0.001 0.000000000000          1           1.00"
        );
        // The median row.
        assert!(
            lines.contains(&"       5.003 0.500000000000       5003           2.00"),
            "{text}"
        );
        // The 100% row has no 1/(1-Percentile) column.
        let last_row = lines[lines.len() - 4];
        assert_eq!(last_row, "      10.007 1.000000000000      10000");
        let n = lines.len();
        assert_eq!(
            lines[n - 3],
            "#[Mean    =        5.001, StdDeviation   =        2.887]"
        );
        assert_eq!(
            lines[n - 2],
            "#[Max     =       10.007, Total count    =        10000]"
        );
        assert_eq!(
            lines[n - 1],
            "#[Buckets =           16, SubBuckets     =         2048]"
        );
        // Percentiles never decrease, totals never decrease.
        let rows: Vec<(f64, u64)> = lines[2..n - 3]
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect();
        assert!(
            rows.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
    }

    #[test]
    fn hgrm_of_empty_histogram_has_header_and_footer() {
        let h = Histogram::<u64>::new(3).unwrap();
        let text = format_hgrm(&h, US_PER_MS);
        assert!(text.starts_with("       Value     Percentile"));
        assert!(text.contains("Total count    =            0]"));
    }

    #[test]
    fn sub_buckets() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(1), 32);
    }

    #[test]
    fn base64_round_trips_v2_and_deflate() {
        let h = sample();
        let deflated = encode_histogram_b64(&h).unwrap();
        assert_eq!(decode_histogram_b64(&deflated).unwrap(), h);

        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).unwrap();
        let plain = STANDARD.encode(plain);
        assert_eq!(decode_histogram_b64(&plain).unwrap(), h);

        assert!(matches!(
            decode_histogram_b64("not base64!"),
            Err(ReportError::HistogramBase64 { .. })
        ));
        assert!(matches!(
            decode_histogram_b64(&STANDARD.encode(b"garbage bytes")),
            Err(ReportError::HistogramDecode { .. })
        ));
    }

    #[test]
    fn summary_percentiles() {
        let s = latency_summary(&sample());
        assert_eq!(s.count, 10_000);
        assert!((s.p50 - 5000.0).abs() <= 5.0, "{}", s.p50);
        assert!((s.p99 - 9900.0).abs() <= 10.0, "{}", s.p99);
        assert!(s.max >= 10_000.0);
        assert_eq!(latency_summary(&Histogram::new(3).unwrap()).count, 0);
    }
}
