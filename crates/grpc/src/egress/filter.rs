//! What an egress request selects: Loggregator's selectors (any of them
//! may match; each names a source, empty for any, and a kind of envelope,
//! none for any, with name filters for counters and gauges), and the coarse
//! bus [`envelope::Selector`] a subscription for them can use.

use envelope::v2::{Envelope, EnvelopeType, Message};
use tonic::Status;

use crate::messages::{EgressBatchRequest, Selector, SelectorMessage};

/// The most selectors one request may carry: every envelope is matched
/// against each, so a request must not make that unbounded work.
pub const MAX_SELECTORS: usize = 256;

/// A request's selectors, checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Filter {
    selectors: Vec<Selector>,
}

impl Filter {
    /// The selectors of a request (its legacy selector counted as one);
    /// `InvalidArgument` when there are none, as Loggregator answers.
    pub fn from_request(request: &EgressBatchRequest) -> Result<Self, Status> {
        let mut selectors: Vec<Selector> = request.selectors.clone();
        selectors.extend(request.legacy_selector.clone());
        if selectors.is_empty() {
            return Err(Status::invalid_argument("Selectors cannot be empty"));
        }
        if selectors.len() > MAX_SELECTORS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_SELECTORS} selectors per request"
            )));
        }
        // A canonical order: shard groups are keyed by their selectors.
        selectors.sort_by_cached_key(|s| format!("{s:?}"));
        selectors.dedup();
        Ok(Filter { selectors })
    }

    pub fn matches(&self, env: &Envelope) -> bool {
        self.selectors.iter().any(|s| selects(s, env))
    }

    /// A bus selector that lets through at least what this filter selects:
    /// the source ids when every selector names one, the envelope types
    /// when every selector names one, else everything.
    pub fn bus_selector(&self) -> envelope::Selector {
        let mut bus = envelope::Selector::all();
        let types: Option<Vec<EnvelopeType>> = self
            .selectors
            .iter()
            .map(|s| {
                Some(match s.message.as_ref()? {
                    SelectorMessage::Log(_) => EnvelopeType::Log,
                    SelectorMessage::Counter(_) => EnvelopeType::Counter,
                    SelectorMessage::Gauge(_) => EnvelopeType::Gauge,
                    SelectorMessage::Timer(_) => EnvelopeType::Timer,
                    SelectorMessage::Event(_) => EnvelopeType::Event,
                })
            })
            .collect();
        if let Some(mut types) = types {
            types.sort_by_key(|t| *t as i32);
            types.dedup();
            bus.envelope_types = types;
        }
        if self.selectors.iter().all(|s| !s.source_id.is_empty()) {
            let mut ids: Vec<String> = self.selectors.iter().map(|s| s.source_id.clone()).collect();
            ids.sort();
            ids.dedup();
            bus.source_ids = ids;
        }
        bus
    }

    /// Whether the request may see every source (no selector names one):
    /// the firehose.
    pub fn is_firehose(&self) -> bool {
        self.selectors.iter().any(|s| s.source_id.is_empty())
    }
}

fn selects(s: &Selector, env: &Envelope) -> bool {
    if !s.source_id.is_empty() && s.source_id != env.source_id {
        return false;
    }
    match (&s.message, &env.message) {
        (None, Some(_)) => true,
        (Some(SelectorMessage::Log(_)), Some(Message::Log(_))) => true,
        (Some(SelectorMessage::Counter(c)), Some(Message::Counter(e))) => {
            c.name.is_empty() || c.name == e.name
        }
        (Some(SelectorMessage::Gauge(g)), Some(Message::Gauge(e))) => {
            g.names.iter().all(|n| e.metrics.contains_key(n))
        }
        (Some(SelectorMessage::Timer(_)), Some(Message::Timer(_))) => true,
        (Some(SelectorMessage::Event(_)), Some(Message::Event(_))) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use envelope::v2::{Counter, Gauge, GaugeValue};
    use envelope::LogType;

    use super::*;
    use crate::messages::{CounterSelector, GaugeSelector, LogSelector};

    fn request(selectors: Vec<Selector>) -> EgressBatchRequest {
        EgressBatchRequest {
            selectors,
            ..Default::default()
        }
    }

    fn sel(source: &str, message: Option<SelectorMessage>) -> Selector {
        Selector {
            source_id: source.into(),
            message,
        }
    }

    fn counter(source: &str, name: &str) -> Envelope {
        let mut e = Envelope::log(1, source, "0", Bytes::new(), LogType::Out);
        e.message = Some(Message::Counter(Counter {
            name: name.into(),
            delta: 1,
            total: 1,
        }));
        e
    }

    fn gauge(source: &str, names: &[&str]) -> Envelope {
        let mut e = Envelope::log(1, source, "0", Bytes::new(), LogType::Out);
        e.message = Some(Message::Gauge(Gauge {
            metrics: names
                .iter()
                .map(|n| {
                    let v = GaugeValue {
                        unit: "u".into(),
                        value: 1.0,
                    };
                    (n.to_string(), v)
                })
                .collect(),
        }));
        e
    }

    #[test]
    fn empty_selectors_are_refused() {
        let err = Filter::from_request(&request(vec![])).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), "Selectors cannot be empty");
        let mut legacy = request(vec![]);
        legacy.legacy_selector = Some(sel("a", None));
        assert!(Filter::from_request(&legacy).is_ok());
        let many = (0..=MAX_SELECTORS)
            .map(|i| sel(&i.to_string(), None))
            .collect();
        let err = Filter::from_request(&request(many)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn any_selector_may_match_with_name_filters() {
        let f = Filter::from_request(&request(vec![
            sel("a", Some(SelectorMessage::Log(LogSelector {}))),
            sel(
                "",
                Some(SelectorMessage::Counter(CounterSelector {
                    name: "hits".into(),
                })),
            ),
            sel(
                "b",
                Some(SelectorMessage::Gauge(GaugeSelector {
                    names: vec!["cpu".into(), "mem".into()],
                })),
            ),
        ]))
        .unwrap();
        assert!(f.matches(&Envelope::log(1, "a", "0", Bytes::new(), LogType::Out)));
        assert!(!f.matches(&Envelope::log(1, "b", "0", Bytes::new(), LogType::Out)));
        assert!(f.matches(&counter("z", "hits")));
        assert!(!f.matches(&counter("z", "misses")));
        assert!(f.matches(&gauge("b", &["cpu", "mem", "disk"])));
        assert!(!f.matches(&gauge("b", &["cpu"])));
        assert!(!f.matches(&gauge("a", &["cpu", "mem"])));
        assert!(f.is_firehose());
        let bus = f.bus_selector();
        assert!(bus.source_ids.is_empty(), "one selector names no source");
        let types = [
            EnvelopeType::Log,
            EnvelopeType::Counter,
            EnvelopeType::Gauge,
        ];
        assert_eq!(bus.envelope_types, types);
    }

    #[test]
    fn named_sources_narrow_the_bus_and_order_does_not_matter() {
        let a = sel("a", None);
        let b = sel("b", Some(SelectorMessage::Log(LogSelector {})));
        let f1 = Filter::from_request(&request(vec![a.clone(), b.clone()])).unwrap();
        let f2 = Filter::from_request(&request(vec![b, a.clone(), a])).unwrap();
        assert_eq!(f1, f2);
        assert!(!f1.is_firehose());
        assert_eq!(f1.bus_selector().source_ids, vec!["a", "b"]);
    }
}
