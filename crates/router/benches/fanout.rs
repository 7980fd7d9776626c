//! Router fan-out: publish batches of 100 log envelopes to 1, 10 and 100
//! subscribers (each selecting everything, drained between iterations so
//! queues never drop), and to 1,000 app drains of which one matches.
//! Measures the cost of fan-out per batch read from the log.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use envelope::{Entry, Envelope, LogType, Selector};
use metrics::Metrics;
use sluice_router::{Bus, BusConfig};

/// Entries as the server's fan-out hands them over (read from the log).
fn entries(batch: Vec<Envelope>) -> Vec<Arc<Entry>> {
    batch.into_iter().map(|e| Arc::new(Entry::new(e))).collect()
}

fn batch(n: usize) -> Vec<Envelope> {
    let payload = Bytes::from(vec![b'x'; 200]);
    (0..n)
        .map(|i| {
            let mut e = Envelope::log(
                1_800_000_000_000_000_000 + i as i64,
                "app-guid",
                "0",
                payload.clone(),
                LogType::Out,
            );
            e.tags.insert("app_name".into(), "web".into());
            e
        })
        .collect()
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    let template = batch(100);
    group.throughput(Throughput::Elements(template.len() as u64));
    for subscribers in [1usize, 10, 100] {
        let bus = Bus::new(BusConfig::default(), Arc::new(Metrics::default()));
        let mut subs: Vec<_> = (0..subscribers)
            .map(|_| bus.subscribe(Selector::all(), "bench"))
            .collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, _| {
                b.iter_batched(
                    || entries(template.clone()),
                    |envelopes| {
                        bus.publish_entries(&envelopes);
                        for s in subs.iter_mut() {
                            while s.try_recv(10_000).is_some() {}
                        }
                    },
                    criterion::BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();

    // Drains name their apps: 1,000 of them, one of which wants the batch,
    // cost an index lookup per entry rather than 1,000 selector checks.
    let mut group = c.benchmark_group("fanout_app_drains");
    group.throughput(Throughput::Elements(template.len() as u64));
    let bus = Bus::new(BusConfig::default(), Arc::new(Metrics::default()));
    let mut wanted = bus.subscribe(
        Selector {
            apps: vec!["web".into()],
            ..Default::default()
        },
        "drain",
    );
    let _idle: Vec<_> = (0..999)
        .map(|i| {
            bus.subscribe(
                Selector {
                    apps: vec![format!("app{i}")],
                    ..Default::default()
                },
                "drain",
            )
        })
        .collect();
    group.bench_function("1000", |b| {
        b.iter_batched(
            || entries(template.clone()),
            |envelopes| {
                bus.publish_entries(&envelopes);
                while wanted.try_recv(10_000).is_some() {}
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
