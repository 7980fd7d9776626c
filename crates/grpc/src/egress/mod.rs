//! The `loggregator.v2.Egress` service: the firehose for nozzles.
//!
//! `BatchedReceiver` streams batches of up to [`MAX_BATCH`] envelopes
//! (whatever is waiting, at once: no batching delay), `Receiver` one
//! envelope per message. A request needs at least one selector
//! (`InvalidArgument "Selectors cannot be empty"`); past
//! [`EgressLimits::max_streams`] streams it gets `ResourceExhausted`.
//! Streams with the same non-empty `shard_id` split the stream
//! ([`groups`]); `use_preferred_tags = false` moves tags into
//! `deprecated_tags`, as Loggregator does for old clients. Live only and
//! at most once: a slow stream loses its oldest envelopes and is told, as
//! a counter envelope `dropped` (delta: how many) from source `sluice`
//! with tag `direction = egress`.

pub mod filter;
pub mod groups;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use envelope::v2::{Counter, Envelope, EnvelopeBatch, Message, Value, ValueData};
use futures_util::Stream;
use router::Bus;
use tonic::{Request, Response, Status};

use crate::egress::filter::Filter;
use crate::egress::groups::{Groups, Member, Next};
use crate::ingress_server_glue::egress_server::Egress;
use crate::messages::{EgressBatchRequest, EgressRequest};

/// The most envelopes in one `BatchedReceiver` message.
pub const MAX_BATCH: usize = 100;

#[derive(Clone, Copy, Debug)]
pub struct EgressLimits {
    /// Concurrent egress streams (Loggregator's default: 500).
    pub max_streams: usize,
}

impl Default for EgressLimits {
    fn default() -> Self {
        EgressLimits { max_streams: 500 }
    }
}

/// The Egress service over the bus.
#[derive(Clone)]
pub struct EgressService {
    groups: Groups,
    limits: EgressLimits,
    active: Arc<AtomicUsize>,
}

/// One open egress stream (gRPC or the RLP gateway's `/v2/read`): its
/// group membership and its slot in the limit; closed when dropped.
pub struct EgressStream {
    member: Member,
    use_preferred_tags: bool,
    active: Arc<AtomicUsize>,
    /// Dropped envelopes told so far, for the counter's total.
    dropped_total: u64,
}

impl Drop for EgressStream {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EgressService {
    pub fn new(bus: Bus, limits: EgressLimits) -> Self {
        EgressService {
            groups: Groups::new(bus),
            limits,
            active: Arc::default(),
        }
    }

    /// The Egress service of a cluster node: shard groups span the nodes
    /// ([`groups::NodeShare`]).
    pub fn shared(bus: Bus, limits: EgressLimits, share: Arc<dyn groups::NodeShare>) -> Self {
        EgressService {
            groups: Groups::shared(bus, share),
            limits,
            active: Arc::default(),
        }
    }

    /// The non-empty shard ids with streams on this node.
    pub fn shard_ids(&self) -> Vec<String> {
        self.groups.shard_ids()
    }

    /// Shard groups with a non-empty id now.
    pub fn shard_groups(&self) -> usize {
        self.groups.len()
    }

    /// Opens a stream for a request: `InvalidArgument` without selectors,
    /// `ResourceExhausted` past the limit.
    pub fn open(&self, request: &EgressBatchRequest) -> Result<EgressStream, Status> {
        let filter = Filter::from_request(request)?;
        let taken = self.active.fetch_add(1, Ordering::AcqRel);
        if taken >= self.limits.max_streams {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Status::resource_exhausted(format!(
                "too many egress streams (the limit is {})",
                self.limits.max_streams
            )));
        }
        let member = self
            .groups
            .join(&request.shard_id, &request.deterministic_name, filter);
        Ok(EgressStream {
            member,
            use_preferred_tags: request.use_preferred_tags,
            active: Arc::clone(&self.active),
            dropped_total: 0,
        })
    }
}

impl EgressStream {
    /// The next envelopes to send, up to `max` (a loss notice comes alone);
    /// `None` when the stream ends (the server shuts down).
    pub async fn next(&mut self, max: usize) -> Option<Vec<Envelope>> {
        match self.member.queue.next(max).await? {
            Next::Dropped(n) => {
                self.dropped_total += n;
                Some(vec![dropped_counter(n, self.dropped_total)])
            }
            Next::Entries(entries) => Some(
                entries
                    .iter()
                    .map(|e| outgoing(&e.envelope, self.use_preferred_tags))
                    .collect(),
            ),
        }
    }
}

/// An envelope as a client asked for it.
fn outgoing(env: &Envelope, use_preferred_tags: bool) -> Envelope {
    let mut out = env.clone();
    if !use_preferred_tags {
        for (k, v) in std::mem::take(&mut out.tags) {
            let value = Value {
                data: Some(ValueData::Text(v)),
            };
            out.deprecated_tags.insert(k, value);
        }
    }
    out
}

/// The in-band loss notice of a stream.
fn dropped_counter(delta: u64, total: u64) -> Envelope {
    let mut e = Envelope::log(
        envelope::time::now_ns(),
        "sluice",
        "",
        bytes::Bytes::new(),
        envelope::LogType::Out,
    );
    e.message = Some(Message::Counter(Counter {
        name: "dropped".into(),
        delta,
        total,
    }));
    e.tags.insert("direction".into(), "egress".into());
    e
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<EnvelopeBatch, Status>> + Send>>;
type EnvelopeStream = Pin<Box<dyn Stream<Item = Result<Envelope, Status>> + Send>>;

#[tonic::async_trait]
impl Egress for EgressService {
    type ReceiverStream = EnvelopeStream;
    type BatchedReceiverStream = BatchStream;

    async fn receiver(
        &self,
        request: Request<EgressRequest>,
    ) -> Result<Response<Self::ReceiverStream>, Status> {
        let open = self.open(&request.into_inner().into())?;
        let stream = futures_util::stream::unfold(
            (open, std::collections::VecDeque::new()),
            |(mut open, mut pending)| async move {
                if pending.is_empty() {
                    pending.extend(open.next(MAX_BATCH).await?);
                }
                let env = pending.pop_front()?;
                Some((Ok(env), (open, pending)))
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn batched_receiver(
        &self,
        request: Request<EgressBatchRequest>,
    ) -> Result<Response<Self::BatchedReceiverStream>, Status> {
        let open = self.open(request.get_ref())?;
        let stream = futures_util::stream::unfold(open, |mut open| async move {
            let batch = open.next(MAX_BATCH).await?;
            Some((Ok(EnvelopeBatch { batch }), open))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
