//! The notices a drain appends to the log when it lost messages, so the
//! app's own stream says so (and the drain, reading on, delivers the
//! notice too): `sluice: N messages lost for app X to drain NAME since T`
//! ([`codec::notice::lost_for_drain`]), from the app's source, tagged
//! `source_type` [`notice::SOURCE_TYPE`], type ERR.

use std::sync::Arc;

use bytes::Bytes;
use codec::notice;
use envelope::time::now_ns;
use envelope::{tags, Entry, Envelope, LogType};

/// `count` messages lost since `since`. The app is `sample`'s `app_name`
/// tag, else the drain's own app, else `sample`'s source id, else `*`;
/// the notice goes into `sample`'s source, else the app's.
pub(super) fn lost(
    drain: &str,
    drain_app: Option<&str>,
    count: u64,
    since: i64,
    sample: Option<&Envelope>,
    why: Option<&str>,
) -> Envelope {
    let app = sample
        .and_then(|e| e.tag(tags::APP_NAME))
        .or(drain_app)
        .or_else(|| sample.map(|e| e.source_id.as_str()))
        .unwrap_or("*")
        .to_owned();
    let text = notice::lost_for_drain(count, &app, drain, since, why);
    let source_id = sample.map_or_else(|| app.clone(), |e| e.source_id.clone());
    let mut told = Envelope::log(now_ns(), source_id, "", Bytes::from(text), LogType::Err);
    told.tags
        .insert(tags::SOURCE_TYPE.to_owned(), notice::SOURCE_TYPE.to_owned());
    if let Some(e) = sample {
        for t in [tags::APP_NAME, tags::SPACE_NAME, tags::ORGANIZATION_NAME] {
            if let Some(v) = e.tag(t) {
                told.tags.insert(t.to_owned(), v.to_owned());
            }
        }
    }
    told
}

/// A batch the receiver refused (an HTTP 4xx): one notice per source it
/// held, with what the receiver answered (`…: receiver answered 400 Bad
/// Request`). sluice's own notices are counted but not told again, so a
/// receiver that refuses everything cannot start a loop of notices about
/// notices.
pub(super) fn rejected(
    drain: &str,
    drain_app: Option<&str>,
    batch: &[Arc<Entry>],
    reason: &str,
) -> Vec<Envelope> {
    // source id → (count, earliest time, a sample), in batch order.
    let mut groups: Vec<(&str, u64, i64, &Envelope)> = Vec::new();
    for entry in batch {
        let env = &entry.envelope;
        if env.tag(tags::SOURCE_TYPE) == Some(notice::SOURCE_TYPE) {
            continue;
        }
        match groups.iter_mut().find(|g| g.0 == env.source_id) {
            Some(g) => {
                g.1 += 1;
                g.2 = g.2.min(env.timestamp);
            }
            None => groups.push((&env.source_id, 1, env.timestamp, env)),
        }
    }
    groups
        .into_iter()
        .map(|(_, count, since, sample)| {
            lost(drain, drain_app, count, since, Some(sample), Some(reason))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_without_a_sample_goes_to_the_drains_app_or_star() {
        let told = lost("d", Some("web"), 3, 1_795_266_898_000_000_000, None, None);
        assert_eq!(told.source_id, "web");
        assert_eq!(told.tag(tags::SOURCE_TYPE), Some(notice::SOURCE_TYPE));
        let text = told.as_log().map(|l| l.payload.clone()).unwrap_or_default();
        assert_eq!(
            text,
            "sluice: 3 messages lost for app web to drain d since 2026-11-21T13:14:58Z"
        );
        let told = lost("d", None, 1, 0, None, None);
        assert_eq!(told.source_id, "*");
    }
}
