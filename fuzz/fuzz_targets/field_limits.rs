//! Arbitrary bytes decoded as a Log Cache JSON envelope (as
//! `envelope_json`), then cut to the default identity field limits
//! (`FieldLimits::apply`, on every ingest path). Afterwards every bound
//! holds, what is kept is a prefix of what was sent (tags: the first names
//! in order), and the counts say whether anything changed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sources::limits::{FieldCuts, FieldLimits};

use envelope::v2::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(mut env) = envelope::json::from_json(data) else {
        return;
    };
    let before = env.clone();
    let limits = FieldLimits::default();
    let cuts = limits.apply(&mut env);

    assert!(
        env.source_id.len() <= 256,
        "source_id {}",
        env.source_id.len()
    );
    assert!(
        env.instance_id.len() <= 256,
        "instance_id {}",
        env.instance_id.len()
    );
    assert!(before.source_id.starts_with(&env.source_id));
    assert!(before.instance_id.starts_with(&env.instance_id));

    assert!(env.tags.len() <= 64, "{} tags", env.tags.len());
    // The first 64 names short enough survive, each value a prefix.
    let expected: Vec<&String> = before
        .tags
        .keys()
        .filter(|k| k.len() <= 256)
        .take(64)
        .collect();
    assert_eq!(env.tags.keys().collect::<Vec<_>>(), expected);
    for (k, v) in &env.tags {
        assert!(k.len() <= 256, "tag key {}", k.len());
        assert!(v.len() <= 1024, "tag {k:?} value {}", v.len());
        assert!(before.tags[k].starts_with(v.as_str()));
    }
    assert!(env.deprecated_tags.len() <= 64);
    assert!(env.deprecated_tags.keys().all(|k| k.len() <= 256));

    match &env.message {
        Some(Message::Counter(c)) => assert!(c.name.len() <= 256),
        Some(Message::Timer(t)) => assert!(t.name.len() <= 256),
        Some(Message::Gauge(g)) => {
            assert!(g.metrics.len() <= 64);
            for (name, v) in &g.metrics {
                assert!(name.len() <= 256 && v.unit.len() <= 256);
            }
        }
        Some(Message::Event(e)) => assert!(e.title.len() <= 1024),
        Some(Message::Log(_)) | None => {}
    }

    // Counted iff changed (compared as JSON: NaN gauges never equal).
    let changed = envelope::json::to_json(&env) != envelope::json::to_json(&before);
    assert_eq!(
        cuts != FieldCuts::default(),
        changed,
        "cuts {cuts:?} but changed = {changed}"
    );
    // Applying again changes nothing.
    let again = env.clone();
    assert_eq!(limits.apply(&mut env), FieldCuts::default());
    assert_eq!(
        envelope::json::to_json(&env),
        envelope::json::to_json(&again)
    );
});
