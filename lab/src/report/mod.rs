//! report: the JSON model, Markdown and SVG rendering, baseline comparison.
//!
//! The scenario engine fills a [`Report`] (pure data, no kernel, no network);
//! [`write_report_dir`] turns it into the files of a run's report directory:
//!
//! | file | what |
//! |---|---|
//! | `report.json` | the [`Report`] itself, the form baselines are kept in |
//! | `report.md` | the readable report, linking the charts |
//! | `distribution.svg`, `clients.svg`, `latency.svg`, `timeline.svg` | charts |
//! | `latency.hgrm` | HdrHistogram percentile distribution, in ms |
//!
//! - [`model`] — the JSON model.
//! - [`fairness`] — max deviation, Jain's index, chi-square and its p-value.
//! - [`charts`] — SVG charts (plotters).
//! - [`render_md`] — `report.md`.
//! - [`summary`] — the terminal summary printed at the end of a scenario.
//! - [`hgrm`] — `latency.hgrm`, histogram base64 decoding, percentile summaries.
//! - [`compare`] — a report against a baseline.

pub mod charts;
pub mod compare;
pub mod error;
pub mod fairness;
pub mod hgrm;
pub mod model;
pub mod render_md;
pub mod summary;
#[cfg(test)]
pub(crate) mod testdata;
mod text;

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

pub use compare::{Comparison, Tolerance, compare};
pub use error::ReportError;
pub use model::*;
pub use summary::render_summary;

/// File name of the JSON report.
pub const REPORT_JSON: &str = "report.json";
/// File name of the Markdown report.
pub const REPORT_MD: &str = "report.md";
/// File name of the percentile distribution.
pub const LATENCY_HGRM: &str = "latency.hgrm";

/// Writes `report.json`, `report.md`, the four SVG charts and (when there is
/// a histogram) `latency.hgrm` into `dir`, creating it if needed. Returns the
/// paths written, in that order.
///
/// `histogram` holds client RPC latencies in µs; when it is `None` the
/// histogram is decoded from `report.latency_us.histogram_b64` if present.
pub fn write_report_dir(
    dir: &Path,
    report: &Report,
    histogram: Option<&Histogram<u64>>,
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let decoded;
    let histogram = match histogram {
        Some(h) => Some(h),
        None => match report
            .latency_us
            .as_ref()
            .and_then(|l| l.histogram_b64.as_deref())
        {
            Some(b64) => {
                decoded = hgrm::decode_histogram_b64(b64)?;
                Some(&decoded)
            }
            None => None,
        },
    };

    let mut written = Vec::new();
    let mut write = |name: &str, contents: &str| -> Result<(), ReportError> {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
        Ok(())
    };

    let json = to_json(report)?;
    write(REPORT_JSON, &json)?;
    write(
        REPORT_MD,
        &render_md::render_markdown_with(report, histogram.is_some()),
    )?;
    write(charts::DISTRIBUTION_SVG, &charts::distribution_svg(report)?)?;
    write(charts::CLIENTS_SVG, &charts::clients_svg(report)?)?;
    write(
        charts::LATENCY_SVG,
        &charts::latency_svg(report, histogram)?,
    )?;
    write(charts::TIMELINE_SVG, &charts::timeline_svg(report)?)?;
    if let Some(h) = histogram {
        write(LATENCY_HGRM, &hgrm::format_hgrm(h, hgrm::US_PER_MS))?;
    }
    Ok(written)
}

/// `report.json`'s text: pretty-printed, with a trailing newline.
pub fn to_json(report: &Report) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(report)
        .map_err(|source| ReportError::EncodeJson { source })?;
    json.push('\n');
    Ok(json)
}

/// Reads a `report.json` (a run's, or a committed baseline).
pub fn read_report_json(path: &Path) -> Result<Report, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReportError::ParseJson {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a sample report to /tmp/ipvs-lab-sample-report for people to
    /// look at: `cargo test -p lab --lib report::tests::sample -- --ignored`.
    #[test]
    #[ignore = "writes to /tmp; run by hand to look at the charts"]
    fn sample_report_to_tmp() {
        let dir = Path::new("/tmp/ipvs-lab-sample-report");
        let report = testdata::synthetic_report(64);
        write_report_dir(dir, &report, None).unwrap();
        let few = Path::new("/tmp/ipvs-lab-sample-report/few-clients");
        let report = testdata::synthetic_report(6);
        write_report_dir(few, &report, None).unwrap();
        let many = Path::new("/tmp/ipvs-lab-sample-report/many-clients");
        let report = testdata::synthetic_report(1000);
        write_report_dir(many, &report, None).unwrap();
    }
}
