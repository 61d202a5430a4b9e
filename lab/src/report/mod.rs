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
//! - [`attribution`] — which server each connection went to, and how the lab knows.
//! - [`fairness`] — the unit counts, max deviation, Jain's index, chi-square
//!   (statrs), effect sizes, sample sizes, homogeneity.
//! - [`charts`] — SVG charts (plotters).
//! - [`render_md`] — `report.md`.
//! - [`rebalance`] — a scale-out: time to fairness, 100 ms against 5 s spread.
//! - [`resources`] — CPU of loadgen, servers and kernel; the saturation warning.
//! - [`summary`] — the terminal summary printed at the end of a scenario.
//! - [`hgrm`] — `latency.hgrm`, histogram base64 decoding, percentile summaries.
//! - [`mod@compare`] — a report against a baseline.

#![warn(missing_docs)]

pub mod attribution;
pub mod charts;
pub mod compare;
pub mod error;
pub mod fairness;
pub mod hgrm;
pub mod model;
pub mod rebalance;
pub mod render_md;
pub mod resources;
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

    #[test]
    fn json_round_trip() {
        let report = testdata::synthetic_report(12);
        let json = to_json(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        // Field names are the documented ones.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["runner"]["kind"], "uml");
        assert_eq!(v["fairness"]["unit"], "rpcs");
        // An older report's `basis` still reads as the unit.
        let old = json.replace("\"unit\":", "\"basis\":");
        let back: Report = serde_json::from_str(&old).unwrap();
        assert_eq!(back.fairness, report.fairness);
        assert_eq!(v["events"][1]["kind"], "fault");
        assert!(v["ipvs"]["services"][0]["destinations"][0]["stats"]["inpkts"].is_u64());
        assert!(v["clients"][0]["servers_seen"].is_object());
    }

    #[test]
    fn minimal_json_loads_with_defaults() {
        let json = r#"{
            "scenario": {"name": "tiny"},
            "runner": {"kind": "host", "kernel": "6.1.0"},
            "events": [{"t_s": 1.5, "kind": "something-new"}]
        }"#;
        let r: Report = serde_json::from_str(json).unwrap();
        assert_eq!(r.scenario.name, "tiny");
        assert!(r.servers.is_empty() && r.fairness.is_none() && !r.passed);
        assert_eq!(r.events[0].kind, EventKind::Other);
        assert_eq!(r.config.protocol, "TCP");
        // And a minimal report still renders everything.
        let dir = tempfile::tempdir().unwrap();
        let files = write_report_dir(dir.path(), &r, None).unwrap();
        assert_eq!(files.len(), 6);
    }

    #[test]
    fn writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let report = testdata::synthetic_report(64);
        let hist = testdata::synthetic_histogram(5_000);
        let files = write_report_dir(&dir.path().join("run"), &report, Some(&hist)).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "report.json",
                "report.md",
                "distribution.svg",
                "clients.svg",
                "latency.svg",
                "timeline.svg",
                "latency.hgrm"
            ]
        );
        let read = |name: &str| std::fs::read_to_string(dir.path().join("run").join(name)).unwrap();
        let svg = read("distribution.svg");
        assert!(svg.starts_with("<svg"));
        for needle in [
            "Share per real server: wrr-failover",
            "\nrs1\n",
            "\nrs3\n",
            "ideal share",
        ] {
            assert!(svg.contains(needle), "distribution.svg lacks {needle}");
        }
        let svg = read("clients.svg");
        for needle in [
            "Server mix per client IP: 42 of 64",
            "\nrs2\n",
            "client IPs",
        ] {
            assert!(svg.contains(needle), "clients.svg lacks {needle}");
        }
        let svg = read("latency.svg");
        for needle in [
            "RPC latency by percentile",
            "\n99%\n",
            "\n99.9%\n",
            "latency (ms)",
            "5000 RPCs",
        ] {
            assert!(svg.contains(needle), "latency.svg lacks {needle}");
        }
        let svg = read("timeline.svg");
        for needle in [
            "RPC rate per real server over time",
            "fault: blackhole rs2",
            "failed RPCs/s",
            "rs3 (ok RPCs/s)",
        ] {
            assert!(svg.contains(needle), "timeline.svg lacks {needle}");
        }
        let md = read("report.md");
        assert!(md.contains("# wrr-failover") && md.contains("](distribution.svg)"));
        assert!(read("latency.hgrm").contains("Total count    =         5000]"));
        let back = read_report_json(&dir.path().join("run/report.json")).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn ipvs_destination_matches_ip_or_socket_address() {
        let mut r = testdata::synthetic_report(1);
        assert_eq!(r.ipvs_destination(&r.servers[2]).unwrap().stats.conns, 82);
        r.servers[2].address = "172.22.35.3:8080".into();
        assert!(r.ipvs_destination(&r.servers[2]).is_some());
        r.servers[2].address = "172.22.35.3:9090".into();
        assert!(r.ipvs_destination(&r.servers[2]).is_none());
        r.ipvs.services[0].destinations[0].address = "fd00::1".into();
        r.servers[0].address = "[fd00::1]:8080".into();
        assert!(r.ipvs_destination(&r.servers[0]).is_some());
    }

    #[test]
    fn unreadable_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = read_report_json(&path).unwrap_err();
        assert!(err.to_string().contains("report.json"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }

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
        let pinned = Path::new("/tmp/ipvs-lab-sample-report/pinned");
        let report = testdata::pinned_report();
        write_report_dir(pinned, &report, None).unwrap();
        println!("{}", render_summary(&report));
        println!("{}", render_summary(&testdata::synthetic_report(8)));
        let base = testdata::synthetic_report(8);
        println!(
            "{}",
            compare(&base, &report, Tolerance::of(&report)).render_text()
        );
    }
}
