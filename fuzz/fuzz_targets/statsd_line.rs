//! Arbitrary bytes as statsd datagrams (`sources::statsd`): every line
//! parses or fails with an error, never a panic; a parsed stat has a
//! non-empty origin and name, a finite value, a rate in (0, 1], at most
//! `MAX_TAGS` tags; and its envelope carries one gauge, finite even when
//! a running total would overflow.
#![no_main]

use envelope::v2::Message;
use libfuzzer_sys::fuzz_target;
use sources::statsd::{parse_line, Aggregator, MAX_TAGS};

fuzz_target!(|data: &[u8]| {
    let mut agg = Aggregator::default();
    for line in data.split(|b| *b == b'\n') {
        let Ok(stat) = parse_line(line) else {
            continue;
        };
        assert!(!stat.source_id.is_empty() && !stat.name.is_empty());
        assert!(stat.value.is_finite());
        assert!(stat.rate > 0.0 && stat.rate <= 1.0);
        assert!(stat.tags.len() <= MAX_TAGS);
        let env = agg.envelope(&stat, 1);
        match &env.message {
            Some(Message::Gauge(g)) => {
                assert_eq!(g.metrics.len(), 1);
                assert!(g.metrics.values().all(|v| v.value.is_finite()));
            }
            other => panic!("{other:?}"),
        }
    }
});
