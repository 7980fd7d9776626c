//! Hot paths of ingest: parsing syslog messages and splitting a TCP stream.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codec::framing::FrameDecoder;
use sluice_codec::rfc5424::octet_count_frame;
use sluice_codec::syslog::parse;

const NOW: i64 = 1_795_260_000_000_000_000;

/// A Loggregator-style RFC 5424 message of 256 bytes.
fn rfc5424_message() -> Vec<u8> {
    let mut msg = b"<14>1 2026-11-21T13:14:58.123456+00:00 org.space.web 4b8a9c1e-5f6d-4c2b-9a3e-7d1f0e2c3b4a [APP/PROC/WEB/0] - [tags@47450 source_type=\"APP/PROC/WEB\" instance_id=\"0\"] 10.0.0.1 - - \"GET /api/v1/items?page=2 HTTP/1.1\" 200 512 ".to_vec();
    msg.resize(256, b'x');
    msg
}

const RFC3164_MESSAGE: &[u8] =
    b"<30>Nov 21 13:14:58 web-7 nginx[4242]: 10.0.0.1 - - \"GET /health HTTP/1.1\" 200 2";

fn bench_parse(c: &mut Criterion) {
    let rfc5424 = rfc5424_message();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rfc5424_256b", |b| {
        b.iter(|| parse(black_box(&rfc5424), NOW).message.len())
    });
    group.bench_function("rfc3164", |b| {
        b.iter(|| parse(black_box(RFC3164_MESSAGE), NOW).message.len())
    });
    group.finish();
}

fn bench_frame_decoder(c: &mut Criterion) {
    let message = rfc5424_message();
    let mut stream = Vec::new();
    for _ in 0..1000 {
        octet_count_frame(&mut stream, &message);
    }
    let mut group = c.benchmark_group("frame_decode");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("octet_counted_x1000", |b| {
        b.iter(|| {
            let mut decoder = FrameDecoder::new(64 * 1024);
            let mut buf = BytesMut::from(black_box(&stream[..]));
            let mut count = 0;
            while let Ok(Some(_frame)) = decoder.decode(&mut buf) {
                count += 1;
            }
            count
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_frame_decoder);
criterion_main!(benches);
