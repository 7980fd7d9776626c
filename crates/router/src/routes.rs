//! The subscriber table the bus publishes through.
//!
//! It is rebuilt on every subscribe and unsubscribe and read without a lock
//! (through `ArcSwap`). Subscriptions that name their sources — by source id
//! or app name, as drains and `sluice logs APP` do — are indexed by those
//! names, so publishing costs a hash lookup per entry whatever the number of
//! such subscriptions (a thousand app drains must not make ingest test a
//! thousand selectors per message). The rest (the firehose, `/logs`) are
//! offered every batch. An indexed queue still applies its whole selector.

use std::collections::HashMap;
use std::sync::Arc;

use envelope::{tags, Entry, Selector};

use crate::queue::Queue;

#[derive(Default)]
pub(crate) struct Routes {
    /// Every subscription.
    pub(crate) all: Vec<Arc<Queue>>,
    /// Subscriptions offered every batch.
    scan: Vec<Arc<Queue>>,
    /// Source id or app name → the subscriptions that name it.
    by_name: HashMap<String, Vec<Arc<Queue>>>,
}

/// The names a selector can be found under, if it names its sources.
fn index_names(selector: &Selector) -> Option<&[String]> {
    if !selector.source_ids.is_empty() {
        Some(&selector.source_ids)
    } else if !selector.apps.is_empty() {
        Some(&selector.apps)
    } else {
        None
    }
}

impl Routes {
    pub(crate) fn build(all: Vec<Arc<Queue>>) -> Self {
        let mut routes = Routes {
            all,
            ..Default::default()
        };
        for q in &routes.all {
            match index_names(&q.selector) {
                Some(names) => {
                    for name in names {
                        let list = routes.by_name.entry(name.clone()).or_default();
                        if !list.iter().any(|x| Arc::ptr_eq(x, q)) {
                            list.push(Arc::clone(q));
                        }
                    }
                }
                None => routes.scan.push(Arc::clone(q)),
            }
        }
        routes
    }

    /// Offers a batch to every subscription that may want it; returns how
    /// many entries were dropped to make room.
    pub(crate) fn offer(&self, entries: &[Arc<Entry>]) -> u64 {
        let mut dropped = 0;
        for q in &self.scan {
            dropped += q.offer(entries);
        }
        if self.by_name.is_empty() {
            return dropped;
        }
        // Entries per indexed queue; few queues match a batch.
        let mut targets: Vec<(&Arc<Queue>, Vec<Arc<Entry>>)> = Vec::new();
        let mut candidates: Vec<&Arc<Queue>> = Vec::new();
        let mut last: Option<(&str, Option<&str>)> = None;
        for e in entries {
            let source = e.source_id();
            let app = e.envelope.tag(tags::APP_NAME);
            if last != Some((source, app)) {
                last = Some((source, app));
                candidates.clear();
                for name in std::iter::once(source).chain(app) {
                    for q in self.by_name.get(name).into_iter().flatten() {
                        if !candidates.iter().any(|c| Arc::ptr_eq(c, q)) {
                            candidates.push(q);
                        }
                    }
                }
            }
            for q in &candidates {
                match targets.iter_mut().find(|(t, _)| Arc::ptr_eq(t, q)) {
                    Some((_, list)) => list.push(Arc::clone(e)),
                    None => targets.push((q, vec![Arc::clone(e)])),
                }
            }
        }
        for (q, list) in targets {
            dropped += q.offer(&list);
        }
        dropped
    }
}
