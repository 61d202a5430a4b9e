//! Criterion benchmarks of the lab's hot pure code (issue 13, item 5): the
//! IPVS netlink messages, `/proc/net/ip_vs_conn` at 100k lines, histogram
//! merging over 1,000 sources, and report rendering at 1,000 clients.
//!
//! Run with `cargo bench -p lab --bench hot_pure` (an optimized build, as
//! every measurement here); `make bench` runs it.
#![allow(unused_crate_dependencies, missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hdrhistogram::Histogram;

use lab::ipvs::conntable::parse_conn_table;
use lab::ipvs::message::{Request, from_bytes, parse_dest, to_bytes};
use lab::ipvs::{Destination, Persistence, Service};
use lab::report::{charts, hgrm, read_report_json, render_md, summary};

/// The reference service of the seed: 192.168.122.1:8080, rr, persistence 60.
fn reference_service() -> Service {
    Service::tcp(IpAddr::V4(Ipv4Addr::new(192, 168, 122, 1)), 8080, "rr")
        .with_persistence(Persistence::per_client(60))
}

fn ipvs_messages(c: &mut Criterion) {
    let svc = reference_service();
    let dest = Destination::dr(SocketAddr::from(([172, 22, 35, 1], 8080)), 1);
    let mut g = c.benchmark_group("ipvs_message");
    g.bench_function("encode NEW_DEST", |b| {
        b.iter(|| {
            to_bytes(
                &Request::NewDest(black_box(&svc), black_box(&dest))
                    .build()
                    .unwrap(),
            )
        })
    });
    let bytes = to_bytes(&Request::NewDest(&svc, &dest).build().unwrap()).unwrap();
    g.bench_function("decode NEW_DEST", |b| {
        b.iter(|| {
            parse_dest(
                &from_bytes(black_box(&bytes)).unwrap(),
                libc::AF_INET as u16,
            )
        })
    });
    g.finish();
}

/// `n` lines as `/proc/net/ip_vs_conn` prints them: connections from 1,000
/// client IPs to 16 real servers, one template per client IP.
fn conn_table_text(n: usize) -> String {
    let mut text = String::from(
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
    );
    for i in 0..n {
        let client = 0xAC16_2400u32 + (i % 1000) as u32;
        let server = 0xAC16_2301u32 + (i % 16) as u32;
        let (port, state, expires) = if i % 64 == 0 {
            (0, "NONE", 59)
        } else {
            (1024 + (i % 60_000), "ESTABLISHED", 899)
        };
        writeln!(
            text,
            "TCP {client:08X} {port:04X} C0A87A01 1F90 {server:08X} 1F90 {state:<11} {expires:>7}"
        )
        .unwrap();
    }
    text
}

fn conn_table(c: &mut Criterion) {
    let text = conn_table_text(100_000);
    let mut g = c.benchmark_group("ip_vs_conn");
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("parse 100k lines", |b| {
        b.iter(|| parse_conn_table(black_box(&text)).unwrap().len())
    });
    g.finish();
}

/// 1,000 per-source histograms (2 significant digits, as loadgen keeps them)
/// of 200 latencies each.
fn source_histograms() -> Vec<Histogram<u64>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1000)
        .map(|_| {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
            for _ in 0..200 {
                // xorshift: deterministic input, no rand in the benchmark.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                h.record(200 + x % 20_000).unwrap();
            }
            h
        })
        .collect()
}

fn histograms(c: &mut Criterion) {
    let sources = source_histograms();
    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements(sources.len() as u64));
    g.bench_function("merge 1000 sources", |b| {
        b.iter(|| {
            let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            for h in &sources {
                merged.add(h).unwrap();
            }
            merged.value_at_quantile(0.99)
        })
    });
    let encoded: Vec<String> = sources
        .iter()
        .take(100)
        .map(|h| hgrm::encode_histogram_b64(h).unwrap())
        .collect();
    g.throughput(Throughput::Elements(encoded.len() as u64));
    g.bench_function("decode 100 base64 histograms", |b| {
        b.iter(|| {
            encoded
                .iter()
                .map(|s| hgrm::decode_histogram_b64(s).unwrap().len())
                .sum::<u64>()
        })
    });
    g.finish();
}

fn report_rendering(c: &mut Criterion) {
    // A real report of 1,000 client IPs from the kernel: the committed
    // baseline of `scale-1000-clients`.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/baselines/scale-1000-clients.json");
    let report = read_report_json(&path).expect("the scale-1000-clients baseline");
    assert!(
        report.clients.len() >= 1000,
        "baseline has {} clients",
        report.clients.len()
    );
    let mut g = c.benchmark_group("report_1000_clients");
    g.sample_size(20);
    g.bench_function("summary", |b| {
        b.iter(|| summary::render_summary(black_box(&report)).len())
    });
    g.bench_function("report.md", |b| {
        b.iter(|| render_md::render_markdown(black_box(&report)).len())
    });
    g.bench_function("clients.svg", |b| {
        b.iter(|| charts::clients_svg(black_box(&report)).unwrap().len())
    });
    g.bench_function("report.json", |b| {
        b.iter(|| lab::report::to_json(black_box(&report)).unwrap().len())
    });
    g.finish();
}

// No plots: criterion's plotters backend panics (FontUnavailable) on a
// machine without system fonts, which these VMs are; the figures are text.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = ipvs_messages, conn_table, histograms, report_rendering
}
criterion_main!(benches);
