//! Turning the head of the buffer into one ingest request body: NDJSON, one
//! Log Cache JSON envelope per line, at most `max_items` app entries and
//! about `max_bytes` (always at least one entry), led by a loss notice when
//! lines were lost since the last one was delivered.

use envelope::json::write_json;

use super::buffer::{DropOldest, Loss};
use super::envelopes::{Identity, Item};

/// A request body and what to acknowledge once the server has taken it.
#[derive(Debug)]
pub struct Batch {
    pub body: Vec<u8>,
    /// App entries in the body (not counting a loss notice).
    pub entries: usize,
    /// Sequence number of the last entry, to ack; `None` with no entries.
    pub last_seq: Option<u64>,
    /// The loss reported by the notice leading the body, to ack.
    pub loss: Option<Loss>,
}

/// Limits of one batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_items: usize,
    pub max_bytes: usize,
}

/// The next batch, or `None` if there is nothing to send. `now` dates a
/// notice that has no entry to precede.
pub fn next_batch(
    queue: &DropOldest<Item>,
    identity: &Identity,
    limits: Limits,
    now: i64,
) -> Option<Batch> {
    let head = queue.peek(limits.max_items);
    let loss = queue.loss();
    if head.is_empty() && loss.is_none() {
        return None;
    }
    let mut body = Vec::with_capacity(64 * 1024);
    if let Some(loss) = loss {
        // Just before the first line after the gap, so it sorts there.
        let at = head.first().map_or(now, |(_, item)| timestamp(item) - 1);
        write_json(&identity.loss_notice(at, loss), &mut body);
        body.push(b'\n');
    }
    let mut entries = 0;
    let mut last_seq = None;
    for (seq, item) in &head {
        if entries > 0 && body.len() >= limits.max_bytes {
            break;
        }
        write_json(&identity.envelope(item), &mut body);
        body.push(b'\n');
        entries += 1;
        last_seq = Some(*seq);
    }
    Some(Batch {
        body,
        entries,
        last_seq,
        loss,
    })
}

fn timestamp(item: &Item) -> i64 {
    match item {
        Item::Line { timestamp, .. } => *timestamp,
        Item::Envelope(env) => env.timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::json::from_json;
    use envelope::LogType;

    fn identity() -> Identity {
        Identity::new(
            "web".into(),
            "web".into(),
            "0".into(),
            "APP/PROC/WEB".into(),
            None,
            None,
            None,
        )
    }

    fn line(ts: i64, text: &'static str) -> Item {
        Item::Line {
            timestamp: ts,
            kind: LogType::Out,
            payload: Bytes::from_static(text.as_bytes()),
        }
    }

    fn payloads(body: &[u8]) -> Vec<String> {
        body.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let env = from_json(l).unwrap();
                String::from_utf8_lossy(&env.as_log().unwrap().payload).into_owned()
            })
            .collect()
    }

    const LIMITS: Limits = Limits {
        max_items: 1000,
        max_bytes: 1 << 20,
    };

    #[test]
    fn nothing_to_send() {
        let q = DropOldest::new(10);
        assert!(next_batch(&q, &identity(), LIMITS, 0).is_none());
    }

    #[test]
    fn one_json_envelope_per_line() {
        let mut q = DropOldest::new(10);
        q.push(line(10, "a"), 0);
        q.push(line(11, "b"), 0);
        let batch = next_batch(&q, &identity(), LIMITS, 0).unwrap();
        assert_eq!(payloads(&batch.body), ["a", "b"]);
        assert_eq!(batch.entries, 2);
        assert_eq!(batch.last_seq, Some(1));
        assert_eq!(batch.loss, None);
    }

    #[test]
    fn a_loss_notice_leads_the_batch() {
        let mut q = DropOldest::new(1);
        q.push(line(10, "a"), 1_000_000_000);
        q.push(line(20, "b"), 1_000_000_000);
        let batch = next_batch(&q, &identity(), LIMITS, 0).unwrap();
        assert_eq!(
            payloads(&batch.body),
            ["sluice: 1 messages dropped since 1970-01-01T00:00:01Z", "b"]
        );
        let first = batch.body.split(|&b| b == b'\n').next().unwrap();
        assert_eq!(from_json(first).unwrap().timestamp, 19);
        assert_eq!(batch.loss.map(|l| l.count), Some(1));
    }

    #[test]
    fn a_notice_alone_is_a_batch() {
        let mut q: DropOldest<Item> = DropOldest::new(1);
        q.record_loss(3, 5);
        let batch = next_batch(&q, &identity(), LIMITS, 77).unwrap();
        assert_eq!(batch.entries, 0);
        assert_eq!(batch.last_seq, None);
        assert_eq!(payloads(&batch.body).len(), 1);
    }

    #[test]
    fn batches_are_bounded() {
        let mut q = DropOldest::new(100);
        for i in 0..10 {
            q.push(line(i, "0123456789"), 0);
        }
        let limits = Limits {
            max_items: 4,
            max_bytes: 1 << 20,
        };
        assert_eq!(next_batch(&q, &identity(), limits, 0).unwrap().entries, 4);
        let limits = Limits {
            max_items: 100,
            max_bytes: 1,
        };
        let batch = next_batch(&q, &identity(), limits, 0).unwrap();
        assert_eq!(batch.entries, 1);
        assert_eq!(batch.last_seq, Some(0));
    }
}
