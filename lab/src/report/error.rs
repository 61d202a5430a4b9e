//! The report module's error type: every variant names the file or the
//! operation that failed and keeps its cause as `#[source]`.

use std::path::PathBuf;

use plotters::drawing::DrawingAreaErrorKind;

/// Why writing or reading a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report directory could not be created.
    #[error("creating report directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A report file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `report.json` could not be encoded.
    #[error("encoding the report as JSON")]
    EncodeJson {
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A `report.json` could not be parsed.
    #[error("parsing report JSON {path}")]
    ParseJson {
        /// The file.
        path: PathBuf,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The chart font is not installed.
    #[error(
        "chart font {path} is missing (install Debian's fonts-dejavu-core, see scripts/install-deps.sh)"
    )]
    FontMissing {
        /// Where the font was expected.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The chart font file is not a font plotters can use.
    #[error("chart font {path} is not a valid TrueType/OpenType font")]
    FontInvalid {
        /// The font file.
        path: PathBuf,
    },
    /// plotters failed while drawing a chart.
    #[error("drawing chart {chart}")]
    Chart {
        /// The chart's file name, e.g. `distribution.svg`.
        chart: &'static str,
        /// The plotters error.
        #[source]
        source: DrawingAreaErrorKind<std::io::Error>,
    },
    /// `histogram_b64` is not valid base64.
    #[error("decoding the latency histogram's base64")]
    HistogramBase64 {
        /// The base64 error.
        #[source]
        source: base64::DecodeError,
    },
    /// The bytes are not an HdrHistogram V2 (or V2+deflate) histogram.
    #[error("deserializing the latency histogram (HdrHistogram V2)")]
    HistogramDecode {
        /// The hdrhistogram error.
        #[source]
        source: hdrhistogram::serialization::DeserializeError,
    },
    /// The histogram could not be serialized.
    #[error("serializing the latency histogram (HdrHistogram V2+deflate)")]
    HistogramEncode {
        /// The hdrhistogram error.
        #[source]
        source: hdrhistogram::serialization::V2DeflateSerializeError,
    },
}
