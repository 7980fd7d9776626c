//! Arbitrary bytes decoded as a gRPC `EnvelopeBatch` (what `BatchSender`
//! and `Send` receive), each envelope then prepared as the Ingress service
//! does (`IngressService::prepare`: the origin tag for an empty source id,
//! timestamp sanity, empty envelopes dropped) and cut to the default field
//! limits, as `IngestContext::submit` does next. Never a panic; what is
//! kept has a message, a source id and a timestamp within the skew window
//! (or the one it came with).
#![no_main]

use std::sync::{Arc, OnceLock};

use envelope::v2::EnvelopeBatch;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use sluice_log::{MemoryLog, MemoryLogConfig};
use sources::limits::FieldLimits;
use sources::IngestContext;

fn service() -> &'static grpc::ingress::IngressService {
    static SERVICE: OnceLock<grpc::ingress::IngressService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let log = Arc::new(MemoryLog::new(MemoryLogConfig::default()));
        let ctx = IngestContext::new(log, Default::default(), Default::default());
        grpc::ingress::IngressService::new(ctx)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = EnvelopeBatch::decode(data) else {
        return;
    };
    let now = 1_800_000_000_000_000_000;
    let limits = FieldLimits::default();
    for env in batch.batch {
        let sent = env.timestamp;
        let Some(mut env) = service().prepare(env, now) else {
            continue;
        };
        assert!(env.message.is_some());
        assert!(!env.source_id.is_empty());
        assert!(env.timestamp == sent || env.timestamp == now);
        limits.apply(&mut env);
        assert!(env.source_id.len() <= 256);
    }
});
