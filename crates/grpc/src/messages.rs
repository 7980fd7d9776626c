//! The `loggregator.v2` Ingress responses (all empty), as prost derives;
//! field-for-field what `ingress.proto` declares.

/// The answer to `Ingress.Sender` when the client closes its stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct IngressResponse {}

/// The answer to `Ingress.BatchSender` when the client closes its stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct BatchSenderResponse {}

/// The answer to `Ingress.Send`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SendResponse {}

/// `Egress.Receiver`'s request: what to stream, and how.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct EgressRequest {
    /// Streams with the same non-empty id and selectors split the stream.
    #[prost(string, tag = "1")]
    pub shard_id: String,
    /// A selector from before `selectors` existed; counted as one of them.
    #[prost(message, optional, tag = "2")]
    pub legacy_selector: Option<Selector>,
    /// `false`: tags are sent as `deprecated_tags`.
    #[prost(bool, tag = "3")]
    pub use_preferred_tags: bool,
    #[prost(message, repeated, tag = "4")]
    pub selectors: Vec<Selector>,
    /// Within a shard group, counters with one name (gauges with one set of
    /// names) always go to the same stream.
    #[prost(string, tag = "5")]
    pub deterministic_name: String,
}

/// `Egress.BatchedReceiver`'s request: the same fields as [`EgressRequest`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct EgressBatchRequest {
    #[prost(string, tag = "1")]
    pub shard_id: String,
    #[prost(message, optional, tag = "2")]
    pub legacy_selector: Option<Selector>,
    #[prost(bool, tag = "3")]
    pub use_preferred_tags: bool,
    #[prost(message, repeated, tag = "4")]
    pub selectors: Vec<Selector>,
    #[prost(string, tag = "5")]
    pub deterministic_name: String,
}

impl From<EgressRequest> for EgressBatchRequest {
    fn from(r: EgressRequest) -> Self {
        EgressBatchRequest {
            shard_id: r.shard_id,
            legacy_selector: r.legacy_selector,
            use_preferred_tags: r.use_preferred_tags,
            selectors: r.selectors,
            deterministic_name: r.deterministic_name,
        }
    }
}

/// One selector: a source (empty: any) and a kind of envelope (none: any).
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Selector {
    #[prost(string, tag = "1")]
    pub source_id: String,
    #[prost(oneof = "SelectorMessage", tags = "2, 3, 4, 5, 6")]
    pub message: Option<SelectorMessage>,
}

/// The kind a [`Selector`] selects, with its name filters.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Oneof)]
pub enum SelectorMessage {
    #[prost(message, tag = "2")]
    Log(LogSelector),
    #[prost(message, tag = "3")]
    Counter(CounterSelector),
    #[prost(message, tag = "4")]
    Gauge(GaugeSelector),
    #[prost(message, tag = "5")]
    Timer(TimerSelector),
    #[prost(message, tag = "6")]
    Event(EventSelector),
}

#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct LogSelector {}

/// Counters; with a name, only counters of that name.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct CounterSelector {
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Gauges; with names, only gauges that carry every one of them.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct GaugeSelector {
    #[prost(string, repeated, tag = "1")]
    pub names: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct TimerSelector {}

#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct EventSelector {}
