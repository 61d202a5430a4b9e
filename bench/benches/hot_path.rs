//! Per-call costs on the load generator's hot path: building the request,
//! attributing the reply to a server, and recording it.

// A benchmark links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

use std::hint::black_box;

use bench::record::{NameCache, ServerTable, Shard, new_histogram};
use bench::wire::{ReplyView, encode_request};
use criterion::{Criterion, criterion_group, criterion_main};
use grpc_demo::pb;
use prost::Message;

fn reply_bytes() -> Vec<u8> {
    pb::WhoAmIReply {
        server_name: "rs1".into(),
        server_addr: "192.168.122.1:8080".into(),
        peer_addr: "10.0.0.7:40001".into(),
        conn_id: 17,
        conn_seq: 123_456,
        payload: Vec::new(),
    }
    .encode_to_vec()
}

fn request(c: &mut Criterion) {
    let pre = encode_request(16, 0);
    c.bench_function("request/pre-encoded clone", |b| {
        b.iter(|| black_box(pre.clone()))
    });
    c.bench_function("request/prost encode each call", |b| {
        b.iter(|| {
            black_box(
                pb::WhoAmIRequest {
                    payload: vec![b'x'; 16],
                    response_size: 0,
                }
                .encode_to_vec(),
            )
        })
    });
}

fn attribution(c: &mut Criterion) {
    let bytes = reply_bytes();
    let table = ServerTable::default();
    let mut cache = NameCache::default();
    c.bench_function("reply/parse view + intern", |b| {
        b.iter(|| {
            let view = ReplyView::parse(black_box(&bytes)).expect("valid");
            black_box(cache.id_of(&table, &view))
        })
    });
    c.bench_function("reply/prost decode (baseline)", |b| {
        b.iter(|| black_box(pb::WhoAmIReply::decode(black_box(bytes.as_slice())).expect("valid")))
    });
}

fn recording(c: &mut Criterion) {
    let bytes = reply_bytes();
    let view = ReplyView::parse(&bytes).expect("valid");
    let mut h = new_histogram();
    c.bench_function("record/histogram", |b| {
        b.iter(|| h.saturating_record(black_box(1234)))
    });
    let mut shard = Shard::new(1);
    c.bench_function("record/shard record_ok", |b| {
        b.iter(|| shard.record_ok(0, 0, black_box(&view), black_box(1234), Some(0)))
    });
}

// No plots: criterion's plotters backend panics (FontUnavailable) on a
// machine without system fonts, which these VMs are; the figures are text.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = request, attribution, recording
}
criterion_main!(benches);
