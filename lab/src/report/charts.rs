//! SVG charts drawn with plotters: distribution, per-client mix, latency by
//! percentile and the timeline.
//!
//! plotters lays out text itself (legend boxes, label spacing), so it needs
//! glyph metrics even for SVG. With its default features off it has none; the
//! `ab_glyph` feature measures with a font we register at runtime:
//! DejaVu Sans, from Debian's `fonts-dejavu-core` (installed by
//! `scripts/install-deps.sh`). The SVG itself names `sans-serif`, so viewers
//! render with whatever sans font they have.
//!
//! Each function renders to a `String`; [`super::write_report_dir`] writes the
//! files. A chart with nothing to show still renders, with a short message,
//! so `report.md`'s links never break.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use super::error::ReportError;
use super::model::{
    ClientResult, Event, EventKind, LatencySummary, Report, RunnerKind, ServerResult, Timeline,
    TimelineBucket,
};

/// The font plotters measures text with.
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// File name of the per-server distribution chart.
pub const DISTRIBUTION_SVG: &str = "distribution.svg";
/// File name of the per-client-IP chart.
pub const CLIENTS_SVG: &str = "clients.svg";
/// File name of the latency-by-percentile chart.
pub const LATENCY_SVG: &str = "latency.svg";
/// File name of the timeline chart.
pub const TIMELINE_SVG: &str = "timeline.svg";

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 520;

/// Server colours (Tableau 10 without its red, which marks errors). Server
/// *i* has the same colour in every chart.
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const ERROR_COLOR: RGBColor = RGBColor(214, 39, 40);
const EVENT_COLOR: RGBColor = RGBColor(90, 90, 90);

/// The colour of the `i`-th server.
pub fn server_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

static FONT_REGISTERED: Mutex<bool> = Mutex::new(false);

/// Registers [`FONT_PATH`] with plotters once per process.
pub fn ensure_font() -> Result<(), ReportError> {
    ensure_font_from(Path::new(FONT_PATH))
}

fn ensure_font_from(path: &Path) -> Result<(), ReportError> {
    let mut registered = FONT_REGISTERED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *registered {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|source| ReportError::FontMissing {
        path: path.to_owned(),
        source,
    })?;
    // plotters keeps fonts for the life of the process and wants 'static
    // bytes; leaking one font once is that, said explicitly.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FONT, FontStyle::Normal, bytes).map_err(|_| ReportError::FontInvalid {
        path: PathBuf::from(path),
    })?;
    *registered = true;
    Ok(())
}

/// A linear `f64` axis whose ticks sit exactly at the given points (server
/// centres, percentile levels). plotters' own `WithKeyPoints` over `f64`
/// cannot take a label formatter, hence this small axis.
struct KeyPointsAxis {
    range: std::ops::Range<f64>,
    points: Vec<f64>,
}

impl KeyPointsAxis {
    fn new(range: std::ops::Range<f64>, points: Vec<f64>) -> Self {
        Self { range, points }
    }
}

impl Ranged for KeyPointsAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        if span == 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let frac = (value - self.range.start) / span;
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Only bold ticks: the light mesh would otherwise repeat them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.points.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Renders one chart into an SVG string.
fn render(
    chart: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> Result<String, ReportError> {
    ensure_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let result = root
            .fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present());
        result.map_err(|source| ReportError::Chart { chart, source })?;
    }
    Ok(svg)
}

fn title_style() -> TextStyle<'static> {
    (FONT, 22).into_font().color(&BLACK)
}

fn label_style() -> TextStyle<'static> {
    (FONT, 14).into_font().color(&BLACK)
}

fn desc_style() -> TextStyle<'static> {
    (FONT, 15).into_font().color(&BLACK)
}

/// Draws a title and a centred message: for charts with no data.
fn draw_empty(root: &DrawingArea<SVGBackend<'_>, Shift>, title: &str, message: &str) -> DrawResult {
    let area = root.titled(title, title_style())?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        message.to_owned(),
        (w as i32 / 2 - 150, h as i32 / 2),
        label_style(),
    ))
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Mark {
    /// A filled box (bars).
    Bar(RGBColor),
    /// A solid line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A thin vertical line (events).
    Vertical(RGBColor),
}

const LEGEND_WIDTH: u32 = 170;

/// Splits off a legend panel at the right of `area` and draws the entries
/// in it. plotters' own series legend sits inside the plot, where stacked
/// bars and lines leave no free corner.
fn with_side_legend<'a>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    entries: &[(String, Mark)],
) -> Result<DrawingArea<SVGBackend<'a>, Shift>, DrawingAreaErrorKind<std::io::Error>> {
    let (w, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(w.saturating_sub(LEGEND_WIDTH));
    let row = 22;
    let top = 30;
    let height = row * entries.len() as i32 + 12;
    legend.draw(&Rectangle::new(
        [(4, top), (LEGEND_WIDTH as i32 - 12, top + height)],
        BLACK.stroke_width(1),
    ))?;
    for (i, (label, mark)) in entries.iter().enumerate() {
        let y = top + 6 + row * i as i32 + row / 2;
        let x = 14;
        match *mark {
            Mark::Bar(c) => {
                legend.draw(&Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()))?
            }
            Mark::Line(c) => legend.draw(&PathElement::new(
                vec![(x, y), (x + 16, y)],
                c.stroke_width(2),
            ))?,
            Mark::Dashed(c) => {
                legend.draw(&PathElement::new(
                    vec![(x, y), (x + 6, y)],
                    c.stroke_width(2),
                ))?;
                legend.draw(&PathElement::new(
                    vec![(x + 10, y), (x + 16, y)],
                    c.stroke_width(2),
                ))?;
            }
            Mark::Vertical(c) => legend.draw(&PathElement::new(
                vec![(x + 7, y - 8), (x + 7, y + 8)],
                c.stroke_width(1),
            ))?,
        }
        legend.draw(&Text::new(
            label.clone(),
            (x + 24, y),
            label_style().pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(plot)
}

fn pct(v: f64) -> String {
    let p = v * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `distribution.svg`: per real server, the observed share of RPCs and of
/// connections as bars, and the ideal share from the weights as a black line
/// across each server's group.
pub fn distribution_svg(report: &Report) -> Result<String, ReportError> {
    let title = format!("Share per real server: {}", report.scenario.name);
    render(DISTRIBUTION_SVG, (WIDTH, HEIGHT), |root| {
        let servers = &report.servers;
        if servers.is_empty() {
            return draw_empty(root, &title, "no real servers in this report");
        }
        let shares = Shares::of(servers);
        let mut chart = share_chart(root, &title, servers, shares.y_max)?;
        let spans = BarSpans::new(shares.with_conns());
        draw_share_bars(&mut chart, servers, &shares, spans)?;
        // Value labels above the bars, while there is room for them.
        if servers.len() <= 12 {
            draw_share_labels(&mut chart, servers, &shares, spans)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(label_style())
            .draw()?;
        Ok(())
    })
}

/// A chart whose x axis is [`KeyPointsAxis`] and y axis a plain `f64`.
type KeyPointsChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<KeyPointsAxis, RangedCoordf64>>;

/// Each server's share of the RPCs and of the connections, and the top of
/// the y axis.
struct Shares {
    total_rpcs: u64,
    total_conns: u64,
    rpcs: Vec<f64>,
    conns: Vec<f64>,
    y_max: f64,
}

impl Shares {
    fn of(servers: &[ServerResult]) -> Self {
        let total_rpcs: u64 = servers.iter().map(|s| s.rpcs).sum();
        let total_conns: u64 = servers.iter().map(|s| s.connections).sum();
        let share = |v: u64, total: u64| {
            if total == 0 {
                0.0
            } else {
                v as f64 / total as f64
            }
        };
        let rpcs: Vec<f64> = servers.iter().map(|s| share(s.rpcs, total_rpcs)).collect();
        let conns: Vec<f64> = servers
            .iter()
            .map(|s| share(s.connections, total_conns))
            .collect();
        let y_max = rpcs
            .iter()
            .chain(&conns)
            .chain(servers.iter().map(|s| &s.ideal_share))
            .fold(0.0_f64, |m, &v| m.max(v));
        // Headroom above the tallest bar for the value labels and the legend.
        let y_max = (y_max * 1.4).clamp(0.1, 1.4);
        Self {
            total_rpcs,
            total_conns,
            rpcs,
            conns,
            y_max,
        }
    }

    /// Connection bars are drawn only when connections were counted.
    fn with_conns(&self) -> bool {
        self.total_conns > 0
    }
}

/// Where, within a server's unit-wide slot, its RPC and connection bars sit.
#[derive(Clone, Copy)]
struct BarSpans {
    rpc: (f64, f64),
    conn: (f64, f64),
}

impl BarSpans {
    /// Side by side with connections; one centred bar without.
    fn new(with_conns: bool) -> Self {
        let (rpc, conn) = if with_conns {
            ((0.12, 0.48), (0.52, 0.88))
        } else {
            ((0.25, 0.75), (0.0, 0.0))
        };
        Self { rpc, conn }
    }
}

/// The distribution chart's axes, mesh and labels, one slot per server.
fn share_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    servers: &[ServerResult],
    y_max: f64,
) -> Result<KeyPointsChart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let n = servers.len();
    let centers: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, title_style())
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(KeyPointsAxis::new(0.0..n as f64, centers), 0.0..y_max)?;
    let x_fmt = |x: &f64| {
        let i = x.floor() as usize;
        names.get(i).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("real server")
        .y_desc("share of the total")
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|y| {
            if *y <= 1.0 + 1e-9 {
                pct(*y)
            } else {
                String::new()
            }
        })
        .light_line_style(TRANSPARENT)
        .x_label_style(label_style())
        .y_label_style(label_style())
        .axis_desc_style(desc_style())
        .draw()?;
    Ok(chart)
}

/// The RPC and connection bars and the ideal-share lines, with their legend
/// entries.
fn draw_share_bars(
    chart: &mut KeyPointsChart<'_, '_>,
    servers: &[ServerResult],
    shares: &Shares,
    spans: BarSpans,
) -> DrawResult {
    let rpc_color = server_color(0);
    let conn_color = server_color(1);
    chart
        .draw_series(shares.rpcs.iter().enumerate().map(|(i, &s)| {
            let x = i as f64;
            Rectangle::new(
                [(x + spans.rpc.0, 0.0), (x + spans.rpc.1, s)],
                rpc_color.filled(),
            )
        }))?
        .label(format!("RPCs ({})", shares.total_rpcs))
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], rpc_color.filled()));
    if shares.with_conns() {
        chart
            .draw_series(shares.conns.iter().enumerate().map(|(i, &s)| {
                let x = i as f64;
                Rectangle::new(
                    [(x + spans.conn.0, 0.0), (x + spans.conn.1, s)],
                    conn_color.filled(),
                )
            }))?
            .label(format!("TCP connections ({})", shares.total_conns))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], conn_color.filled())
            });
    }
    chart
        .draw_series(servers.iter().enumerate().map(|(i, s)| {
            let x = i as f64;
            PathElement::new(
                vec![(x + 0.06, s.ideal_share), (x + 0.94, s.ideal_share)],
                BLACK.stroke_width(3),
            )
        }))?
        .label("ideal share (from weights)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(3)));
    Ok(())
}

/// The share in per cent above each bar.
fn draw_share_labels(
    chart: &mut KeyPointsChart<'_, '_>,
    servers: &[ServerResult],
    shares: &Shares,
    spans: BarSpans,
) -> DrawResult {
    let small = (FONT, 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    let mut labels = Vec::new();
    // Above the bar and above the ideal line, whichever is higher.
    let above = |i: usize, s: f64| s.max(servers[i].ideal_share) + shares.y_max * 0.015;
    for (i, &s) in shares.rpcs.iter().enumerate() {
        let x = i as f64 + (spans.rpc.0 + spans.rpc.1) / 2.0;
        labels.push(Text::new(pct(s), (x, above(i, s)), small.clone()));
    }
    if shares.with_conns() {
        for (i, &s) in shares.conns.iter().enumerate() {
            let x = i as f64 + (spans.conn.0 + spans.conn.1) / 2.0;
            labels.push(Text::new(pct(s), (x, above(i, s)), small.clone()));
        }
    }
    chart.draw_series(labels)?;
    Ok(())
}

/// The server a client mostly reached, as an index into `servers`.
fn dominant_server(client: &ClientResult, names: &[&str]) -> (usize, f64) {
    let total: u64 = client.servers_seen.values().sum();
    let (idx, count) = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i, client.servers_seen.get(*n).copied().unwrap_or(0)))
        .max_by_key(|&(i, c)| (c, std::cmp::Reverse(i)))
        .unwrap_or((names.len(), 0));
    let share = if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    };
    if total == 0 {
        (names.len(), 0.0)
    } else {
        (idx, share)
    }
}

/// Clients in chart order: grouped by the server they mostly reached, the
/// most one-sided first within a group, then by address.
pub fn clients_in_chart_order(report: &Report) -> Vec<&ClientResult> {
    let names = report.server_names();
    let mut clients: Vec<(&ClientResult, (usize, f64))> = report
        .clients
        .iter()
        .map(|c| (c, dominant_server(c, &names)))
        .collect();
    clients.sort_by(|(a, (ia, sa)), (b, (ib, sb))| {
        ia.cmp(ib)
            .then(sb.total_cmp(sa))
            .then_with(|| a.address.cmp(&b.address))
    });
    clients.into_iter().map(|(c, _)| c).collect()
}

/// `clients.svg`: one stacked bar per client IP, split by the share of its
/// RPCs each server answered. A single-colour bar is a client pinned to one
/// server (persistence, or one long-lived HTTP/2 channel). With many clients
/// the bars get thin and unlabelled, grouped by dominant server.
pub fn clients_svg(report: &Report) -> Result<String, ReportError> {
    let sticky = report.clients.iter().filter(|c| c.sticky).count();
    let title = format!(
        "Server mix per client IP: {} of {} IPs reached one server only",
        sticky,
        report.clients.len()
    );
    render(CLIENTS_SVG, (WIDTH, HEIGHT), |root| {
        if report.clients.is_empty() {
            return draw_empty(root, &title, "no per-client data in this report");
        }
        let names = report.server_names();
        let clients = clients_in_chart_order(report);
        let legend: Vec<(String, Mark)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), Mark::Bar(server_color(i))))
            .collect();
        let area = root.titled(&title, title_style())?;
        let plot = with_side_legend(&area, &legend)?;
        let mut chart = clients_chart(&plot, &clients)?;
        draw_client_stacks(&mut chart, &names, &clients)
    })
}

/// The clients chart's axes and mesh: each client's address under its bar
/// while there are at most 12, otherwise an index every tenth of the way.
fn clients_chart<'a, 'b>(
    plot: &'a DrawingArea<SVGBackend<'b>, Shift>,
    clients: &[&ClientResult],
) -> Result<KeyPointsChart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let n = clients.len();
    let labelled = n <= 12;
    let addresses: Vec<String> = clients.iter().map(|c| c.address.clone()).collect();
    // With few clients, keep bars from filling the whole width.
    let pad = (4.0 - n as f64).max(0.0) / 2.0;
    let x_spec = if labelled {
        KeyPointsAxis::new(
            -pad..n as f64 + pad,
            (0..n).map(|i| i as f64 + 0.5).collect(),
        )
    } else {
        let step = (n / 10).max(1);
        KeyPointsAxis::new(
            0.0..n as f64,
            (0..=n).step_by(step).map(|i| i as f64).collect(),
        )
    };
    let mut chart = ChartBuilder::on(plot)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x_spec, 0.0..1.0)?;
    let x_fmt = |x: &f64| {
        if labelled {
            addresses
                .get(x.floor() as usize)
                .cloned()
                .unwrap_or_default()
        } else {
            format!("#{}", x.round() as usize)
        }
    };
    let x_desc = if labelled {
        "client IP (grouped by the server it mostly reached)".to_owned()
    } else {
        format!("{n} client IPs (index), grouped by the server each mostly reached")
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .x_desc(x_desc)
        .y_desc("share of the client's RPCs")
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|y| pct(*y))
        .light_line_style(TRANSPARENT)
        .x_label_style(if labelled {
            (FONT, 12).into_font().color(&BLACK)
        } else {
            label_style()
        })
        .y_label_style(label_style())
        .axis_desc_style(desc_style());
    mesh.draw()?;
    Ok(chart)
}

/// One bar per client, stacked by the share each server answered, one
/// series per server so the colours follow [`server_color`].
fn draw_client_stacks(
    chart: &mut KeyPointsChart<'_, '_>,
    names: &[&str],
    clients: &[&ClientResult],
) -> DrawResult {
    let n = clients.len();
    let gap = if n <= 64 { 0.12 } else { 0.0 };
    let totals: Vec<u64> = clients
        .iter()
        .map(|c| c.servers_seen.values().sum())
        .collect();
    let mut base = vec![0.0_f64; n];
    for (si, name) in names.iter().enumerate() {
        let color = server_color(si);
        let mut bars = Vec::new();
        for (ci, c) in clients.iter().enumerate() {
            let count = c.servers_seen.get(*name).copied().unwrap_or(0);
            if count == 0 || totals[ci] == 0 {
                continue;
            }
            let h = count as f64 / totals[ci] as f64;
            let x = ci as f64;
            bars.push(Rectangle::new(
                [(x + gap, base[ci]), (x + 1.0 - gap, base[ci] + h)],
                color.filled(),
            ));
            base[ci] += h;
        }
        chart.draw_series(bars)?;
    }
    Ok(())
}

/// Percentile levels that get an x-axis label on the latency chart, as
/// `log10(1 / (1 − percentile))`.
const LATENCY_TICKS: [(f64, &str); 8] = [
    (0.0, "0%"),
    (std::f64::consts::LOG10_2, "50%"),
    (1.0, "90%"),
    (2.0, "99%"),
    (3.0, "99.9%"),
    (4.0, "99.99%"),
    (5.0, "99.999%"),
    (6.0, "99.9999%"),
];

/// `(log10(1/(1−q)), value in ms)` points of the percentile curve, and the
/// right end of the x axis. With a histogram, one point per percentile step
/// (HdrHistogram's 5 ticks per half distance); otherwise the report's own
/// p50/p90/p99/p99.9 summary.
fn latency_points(report: &Report, hist: Option<&Histogram<u64>>) -> (Vec<(f64, f64)>, f64) {
    if let Some(h) = hist.filter(|h| !h.is_empty()) {
        // Beyond 1/(1−q) = count the curve only repeats the max.
        let x_max = (h.len() as f64).log10().ceil().clamp(2.0, 6.0);
        let mut points: Vec<(f64, f64)> = h
            .iter_quantiles(super::hgrm::TICKS_PER_HALF_DISTANCE)
            .filter(|v| v.quantile_iterated_to() < 1.0)
            .map(|v| {
                let q = v.quantile_iterated_to();
                (
                    (1.0 / (1.0 - q)).log10(),
                    v.value_iterated_to() as f64 / 1000.0,
                )
            })
            .filter(|&(x, _)| x <= x_max)
            .collect();
        points.push((x_max, h.max() as f64 / 1000.0));
        return (points, x_max);
    }
    match &report.latency_us {
        Some(l) if l.count > 0 => (
            vec![
                (LATENCY_TICKS[1].0, l.p50 / 1000.0),
                (1.0, l.p90 / 1000.0),
                (2.0, l.p99 / 1000.0),
                (3.0, l.p999 / 1000.0),
            ],
            3.0,
        ),
        _ => (Vec::new(), 3.0),
    }
}

/// `latency.svg`: client-side RPC latency against percentile on
/// HdrHistogram's usual axis (x = 1/(1−percentile), log scale), in ms.
pub fn latency_svg(report: &Report, hist: Option<&Histogram<u64>>) -> Result<String, ReportError> {
    let runner = match report.runner.kind {
        RunnerKind::Uml => " (UML guest, 1 CPU)",
        RunnerKind::Host => "",
    };
    let title = format!(
        "RPC latency by percentile: {}{runner}",
        report.scenario.name
    );
    render(LATENCY_SVG, (WIDTH, HEIGHT), |root| {
        let (points, x_max) = latency_points(report, hist);
        if points.is_empty() {
            return draw_empty(root, &title, "no latency recorded in this report");
        }
        let y_max = points.iter().fold(0.0_f64, |m, p| m.max(p.1)).max(0.001) * 1.1;
        let mut chart = latency_chart(root, &title, x_max, y_max)?;
        let color = server_color(0);
        let count = hist
            .map(|h| h.len())
            .or(report.latency_us.as_ref().map(|l| l.count))
            .unwrap_or(0);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(format!("client RPC latency ({count} RPCs)"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        // Mark and label the percentiles the tables quote.
        let summary = hist
            .filter(|h| !h.is_empty())
            .map(super::hgrm::latency_summary)
            .or_else(|| report.latency_us.clone().filter(|l| l.count > 0));
        if let Some(l) = summary {
            draw_percentile_marks(&mut chart, &l, color, (x_max, y_max))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(label_style())
            .draw()?;
        Ok(())
    })
}

/// The latency chart's axes and mesh: percentile ticks from
/// [`LATENCY_TICKS`] up to `x_max`, ms with fewer decimals as `y_max` grows.
fn latency_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x_max: f64,
    y_max: f64,
) -> Result<KeyPointsChart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let ticks: Vec<f64> = LATENCY_TICKS
        .iter()
        .map(|t| t.0)
        .filter(|&x| x <= x_max + 1e-9)
        .collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, title_style())
        .margin(16)
        .margin_right(48)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(KeyPointsAxis::new(0.0..x_max, ticks), 0.0..y_max)?;
    let x_fmt = |x: &f64| {
        LATENCY_TICKS
            .iter()
            .find(|t| (t.0 - x).abs() < 1e-6)
            .map(|t| t.1.to_owned())
            .unwrap_or_default()
    };
    let y_fmt = |y: &f64| {
        if y_max < 1.0 {
            format!("{y:.3}")
        } else if y_max < 10.0 {
            format!("{y:.2}")
        } else {
            format!("{y:.1}")
        }
    };
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1/(1 − percentile))")
        .y_desc("latency (ms)")
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_label_style(label_style())
        .y_label_style(label_style())
        .axis_desc_style(desc_style())
        .draw()?;
    Ok(chart)
}

/// A dot and a `p99 0.639 ms` label at each quoted percentile within the
/// x axis; `(x_max, y_max)` is the chart's extent, for the label offset.
fn draw_percentile_marks(
    chart: &mut KeyPointsChart<'_, '_>,
    l: &LatencySummary,
    color: RGBColor,
    (x_max, y_max): (f64, f64),
) -> DrawResult {
    let marks = [
        (LATENCY_TICKS[1].0, "p50", l.p50),
        (1.0, "p90", l.p90),
        (2.0, "p99", l.p99),
        (3.0, "p99.9", l.p999),
    ];
    let font = (FONT, 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Bottom));
    for (x, name, us) in marks.into_iter().filter(|m| m.0 <= x_max) {
        let y = us / 1000.0;
        chart.draw_series(std::iter::once(Circle::new((x, y), 4, color.filled())))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{name} {}", super::text::ms(us)),
            (x - x_max * 0.005, y + y_max * 0.015),
            font.clone(),
        )))?;
    }
    Ok(())
}

/// `timeline.svg`: successful RPCs per second per server over the run (one
/// line per server), failed RPCs per second as a red dashed line, and a
/// vertical line at each event (phase, weight change, health change, fault),
/// labelled in a band above the data.
pub fn timeline_svg(report: &Report) -> Result<String, ReportError> {
    let title = format!(
        "RPC rate per real server over time: {}",
        report.scenario.name
    );
    render(TIMELINE_SVG, (WIDTH, HEIGHT), |root| {
        let tl = &report.timeline;
        if tl.buckets.is_empty() {
            return draw_empty(root, &title, "no timeline recorded in this report");
        }
        let scale = TimelineScale::of(report);
        let names = report.server_names();
        let has_errors = tl.buckets.iter().any(|b| b.errors > 0);
        let legend = timeline_legend(&names, has_errors, !report.events.is_empty());
        let area = root.titled(&title, title_style())?;
        let plot = with_side_legend(&area, &legend)?;
        let mut chart = ChartBuilder::on(&plot)
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..scale.t_end, 0.0..scale.y_max)?;
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc("RPCs per second")
            .y_label_formatter(&|y| {
                if *y <= scale.data_max * 1.05 {
                    format!("{y:.0}")
                } else {
                    String::new()
                }
            })
            .light_line_style(TRANSPARENT)
            .x_label_style(label_style())
            .y_label_style(label_style())
            .axis_desc_style(desc_style())
            .draw()?;
        // Events first, so the data lines are drawn over them.
        draw_events(&mut chart, &report.events, &scale)?;
        draw_rates(&mut chart, tl, &names, &scale, has_errors)
    })
}

/// A chart with plain `f64` axes.
type PlainChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Event labels sit in a band above the data, in this many staggered rows.
const EVENT_LABEL_ROWS: usize = 3;

/// The timeline's extent: time on x, RPCs per second on y with a band on
/// top for the event labels.
struct TimelineScale {
    /// Bucket width in seconds (1 when the report has none).
    bucket_s: f64,
    /// The right end of the x axis.
    t_end: f64,
    /// The highest rate in the data (at least 1).
    data_max: f64,
    /// The label band's height as a fraction of `data_max`.
    band: f64,
    /// The top of the y axis.
    y_max: f64,
}

impl TimelineScale {
    fn of(report: &Report) -> Self {
        let tl = &report.timeline;
        let bucket_s = if tl.bucket_s > 0.0 { tl.bucket_s } else { 1.0 };
        let t_end = tl
            .buckets
            .iter()
            .map(|b| b.t_s + bucket_s)
            .fold(report.duration_s, f64::max)
            .max(bucket_s);
        let data_max = tl
            .buckets
            .iter()
            .flat_map(|b| b.ok.values().copied().chain(std::iter::once(b.errors)))
            .map(|v| v as f64 / bucket_s)
            .fold(0.0_f64, f64::max)
            .max(1.0);
        let band = if report.events.is_empty() { 0.1 } else { 0.32 };
        Self {
            bucket_s,
            t_end,
            data_max,
            band,
            y_max: data_max * (1.0 + band),
        }
    }

    /// A bucket's count as a rate per second.
    fn rate(&self, v: u64) -> f64 {
        v as f64 / self.bucket_s
    }
}

/// One line per server, then failed RPCs and events when there are any.
fn timeline_legend(names: &[&str], has_errors: bool, has_events: bool) -> Vec<(String, Mark)> {
    let mut legend: Vec<(String, Mark)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("{n} (ok RPCs/s)"), Mark::Line(server_color(i))))
        .collect();
    if has_errors {
        legend.push(("failed RPCs/s".to_owned(), Mark::Dashed(ERROR_COLOR)));
    }
    if has_events {
        legend.push(("event".to_owned(), Mark::Vertical(EVENT_COLOR)));
    }
    legend
}

/// A vertical line per event and its label, cut to 30 characters, in the
/// band above the data.
fn draw_events(
    chart: &mut PlainChart<'_, '_>,
    events: &[Event],
    scale: &TimelineScale,
) -> DrawResult {
    let (t_end, y_max) = (scale.t_end, scale.y_max);
    let event_style = EVENT_COLOR.mix(0.8).stroke_width(1);
    let event_font = (FONT, 11).into_font().color(&EVENT_COLOR);
    // Failed checks that changed nothing stay in report.md's table only.
    let shown: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind != EventKind::Check)
        .collect();
    chart.draw_series(
        shown
            .iter()
            .map(|e| PathElement::new(vec![(e.t_s, 0.0), (e.t_s, y_max)], event_style)),
    )?;
    let row_h = scale.data_max * scale.band / (EVENT_LABEL_ROWS as f64 + 0.5);
    let mut texts = Vec::new();
    for (i, e) in shown.iter().enumerate() {
        let mut text = format!("{}: {}", e.kind.as_str(), e.detail);
        if text.chars().count() > 30 {
            text = text.chars().take(29).collect::<String>() + "…";
        }
        let y = y_max - row_h * (0.3 + (i % EVENT_LABEL_ROWS) as f64);
        // Labels near the right edge run leftwards from their line.
        let (x, pos) = if e.t_s > t_end * 0.75 {
            (e.t_s - t_end * 0.005, Pos::new(HPos::Right, VPos::Top))
        } else {
            (e.t_s + t_end * 0.005, Pos::new(HPos::Left, VPos::Top))
        };
        texts.push(Text::new(text, (x, y), event_font.clone().pos(pos)));
    }
    chart.draw_series(texts)?;
    Ok(())
}

/// Each server's successful RPCs per second and, if any failed, the failed
/// RPCs per second as a dashed line, plotted at bucket centres.
fn draw_rates(
    chart: &mut PlainChart<'_, '_>,
    tl: &Timeline,
    names: &[&str],
    scale: &TimelineScale,
    has_errors: bool,
) -> DrawResult {
    let center = |b: &TimelineBucket| b.t_s + scale.bucket_s / 2.0;
    for (i, name) in names.iter().enumerate() {
        let points: Vec<(f64, f64)> = tl
            .buckets
            .iter()
            .map(|b| {
                let ok = b.ok.get(*name).copied().unwrap_or(0);
                (center(b), scale.rate(ok))
            })
            .collect();
        chart.draw_series(LineSeries::new(points, server_color(i).stroke_width(2)))?;
    }
    if has_errors {
        let points: Vec<(f64, f64)> = tl
            .buckets
            .iter()
            .map(|b| (center(b), scale.rate(b.errors)))
            .collect();
        chart.draw_series(DashedLineSeries::new(
            points,
            6,
            4,
            ERROR_COLOR.stroke_width(2),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_font_is_a_clear_error() {
        let err = ensure_font_from(Path::new("/nonexistent/DejaVuSans.ttf"));
        // Once another test registered the real font the call short-circuits.
        if let Err(e) = err {
            assert!(matches!(e, ReportError::FontMissing { .. }));
            assert!(e.to_string().contains("fonts-dejavu-core"));
        }
    }

    #[test]
    fn percent_labels() {
        assert_eq!(pct(0.5), "50%");
        assert_eq!(pct(0.125), "12.5%");
    }
}
