//! Self-metrics: what sluice received, sent and lost, in Prometheus form.
//!
//! One [`Metrics`] per process, shared by every crate through an `Arc`. Label
//! sets are closed (protocol, consumer kind, drop reason: all `&'static str`),
//! so cardinality stays bounded; nothing is labelled per source. Hot paths
//! fetch their counter handles once ([`Metrics::ingress_counters`]) and then
//! only do atomic adds.
//!
//! This crate does no I/O (the server serves [`Metrics::encode`]) and must
//! never depend on any other sluice crate: every crate counts into it.

pub mod samples;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabel {
    consumer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DrainLabel {
    drain: String,
}

/// Counter handles for one drain.
#[derive(Clone, Default)]
pub struct DrainCounters {
    pub sent: Counter,
    pub dropped: Counter,
    /// Log entries the drain has not examined yet (an upper bound for a
    /// drain that selects only part of the log).
    pub behind: Gauge,
}

/// Counter handles for one ingest protocol.
#[derive(Clone, Default)]
pub struct IngressCounters {
    pub envelopes: Counter,
    pub bytes: Counter,
}

impl IngressCounters {
    pub fn record(&self, envelopes: u64, bytes: u64) {
        self.envelopes.inc_by(envelopes);
        self.bytes.inc_by(bytes);
    }
}

pub struct Metrics {
    registry: Registry,
    ingress_envelopes: Family<ProtocolLabel, Counter>,
    ingress_bytes: Family<ProtocolLabel, Counter>,
    egress_envelopes: Family<ConsumerLabel, Counter>,
    drops: Family<ReasonLabel, Counter>,
    errors: Family<ReasonLabel, Counter>,
    drain_sent: Family<DrainLabel, Counter>,
    drain_dropped: Family<DrainLabel, Counter>,
    drain_behind: Family<DrainLabel, Gauge>,
    pub subscribers: Gauge,
    connections: Family<ProtocolLabel, Gauge>,
    pub log_appended: Counter,
    pub log_entries: Gauge,
    pub log_bytes: Gauge,
    pub log_sources: Gauge,
    pub log_repairs: Counter,
    /// Cluster nodes: envelopes the stream acknowledged.
    pub cluster_published: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let m = Metrics {
            ingress_envelopes: Family::default(),
            ingress_bytes: Family::default(),
            egress_envelopes: Family::default(),
            drops: Family::default(),
            errors: Family::default(),
            drain_sent: Family::default(),
            drain_dropped: Family::default(),
            drain_behind: Family::default(),
            subscribers: Gauge::default(),
            connections: Family::default(),
            log_appended: Counter::default(),
            log_entries: Gauge::default(),
            log_bytes: Gauge::default(),
            log_sources: Gauge::default(),
            cluster_published: Counter::default(),
            log_repairs: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "ingress_envelopes",
            "Envelopes received, by protocol",
            m.ingress_envelopes.clone(),
        );
        registry.register(
            "ingress_bytes",
            "Payload bytes received, by protocol",
            m.ingress_bytes.clone(),
        );
        registry.register(
            "egress_envelopes",
            "Envelopes delivered to consumers, by consumer kind",
            m.egress_envelopes.clone(),
        );
        registry.register(
            "drops",
            "Envelopes lost or altered, by reason (queue_full, truncated, parse_error, expired, evicted)",
            m.drops.clone(),
        );
        registry.register(
            "ingress_errors",
            "Bad input seen by ingest, by reason",
            m.errors.clone(),
        );
        registry.register(
            "drain_sent",
            "Envelopes delivered by each drain (label: drain name, bounded by the drains configured)",
            m.drain_sent.clone(),
        );
        registry.register(
            "drain_dropped",
            "Envelopes each drain lost (removed by the log's retention before the drain sent them, or refused by the receiver)",
            m.drain_dropped.clone(),
        );
        registry.register(
            "drain_behind",
            "Log entries each drain has yet to examine (label: drain name; an upper bound for a drain that selects part of the log)",
            m.drain_behind.clone(),
        );
        registry.register(
            "subscribers",
            "Live subscriptions on the bus",
            m.subscribers.clone(),
        );
        registry.register(
            "connections",
            "Open ingest connections, by protocol",
            m.connections.clone(),
        );
        registry.register(
            "cluster_published",
            "Envelopes the cluster's stream acknowledged (cluster nodes)",
            m.cluster_published.clone(),
        );
        registry.register(
            "log_appended",
            "Envelopes appended to the log",
            m.log_appended.clone(),
        );
        registry.register(
            "log_entries",
            "Envelopes in the log's per-source index (readable by source)",
            m.log_entries.clone(),
        );
        registry.register(
            "log_bytes",
            "Bytes the log holds (segment files on disk; approximate in memory)",
            m.log_bytes.clone(),
        );
        registry.register(
            "log_sources",
            "Sources with history in the log",
            m.log_sources.clone(),
        );
        registry.register(
            "log_repairs",
            "Damage the log found and repaired at start (torn tails cut, damaged segments and gaps skipped)",
            m.log_repairs.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Handles to count one protocol's ingress without further lookups.
    pub fn ingress_counters(&self, protocol: &'static str) -> IngressCounters {
        let label = ProtocolLabel { protocol };
        IngressCounters {
            envelopes: self.ingress_envelopes.get_or_create(&label).clone(),
            bytes: self.ingress_bytes.get_or_create(&label).clone(),
        }
    }

    pub fn egress(&self, consumer: &'static str, n: u64) {
        if n > 0 {
            self.egress_envelopes
                .get_or_create(&ConsumerLabel { consumer })
                .inc_by(n);
        }
    }

    /// Counts envelopes lost or altered (`queue_full`, `truncated`, …).
    pub fn count_drop(&self, reason: &'static str, n: u64) {
        self.drops.get_or_create(&ReasonLabel { reason }).inc_by(n);
    }

    pub fn dropped(&self, reason: &'static str) -> u64 {
        self.drops.get_or_create(&ReasonLabel { reason }).get()
    }

    /// Counts a bad input (`bad_frame`, `bad_json`, `too_large`, `idle_timeout`, …).
    pub fn error(&self, reason: &'static str) {
        self.errors.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn errors(&self, reason: &'static str) -> u64 {
        self.errors.get_or_create(&ReasonLabel { reason }).get()
    }

    /// Handles for one drain's counters.
    pub fn drain_counters(&self, drain: &str) -> DrainCounters {
        let label = DrainLabel {
            drain: drain.to_owned(),
        };
        DrainCounters {
            sent: self.drain_sent.get_or_create(&label).clone(),
            dropped: self.drain_dropped.get_or_create(&label).clone(),
            behind: self.drain_behind.get_or_create(&label).clone(),
        }
    }

    /// Removes a deleted drain's series.
    pub fn forget_drain(&self, drain: &str) {
        let label = DrainLabel {
            drain: drain.to_owned(),
        };
        self.drain_sent.remove(&label);
        self.drain_dropped.remove(&label);
        self.drain_behind.remove(&label);
    }

    pub fn connection_gauge(&self, protocol: &'static str) -> Gauge {
        self.connections
            .get_or_create(&ProtocolLabel { protocol })
            .clone()
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names() {
        let m = Metrics::default();
        m.ingress_counters("syslog_tcp").record(3, 30);
        m.count_drop("queue_full", 2);
        m.egress("stream", 1);
        let text = m.encode();
        assert!(
            text.contains("sluice_ingress_envelopes_total{protocol=\"syslog_tcp\"} 3"),
            "{text}"
        );
        assert!(text.contains("sluice_drops_total{reason=\"queue_full\"} 2"));
        assert!(text.contains("sluice_egress_envelopes_total{consumer=\"stream\"} 1"));
        assert!(text.contains("sluice_log_entries 0"));
        m.drain_counters("d").behind.set(7);
        assert!(m.encode().contains("sluice_drain_behind{drain=\"d\"} 7"));
        m.forget_drain("d");
        assert!(!m.encode().contains("sluice_drain_behind{"));
    }
}
