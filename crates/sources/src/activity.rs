//! What each source sent in the last hour, minute by minute: log lines and
//! error lines (`ERR`), with its app name and newest timestamp, for the
//! console's apps list and `GET /v1/apps` (Log Cache's meta counts what
//! the log holds, not what arrived when, nor errors).
//!
//! Kept in memory only (it restarts empty with the server) and bounded:
//! at most [`MAX_SOURCES`] sources; sources silent for an hour are
//! forgotten when room is needed, and beyond that new sources are not
//! tracked (counted in `untracked`) rather than evicting busy ones.

use std::collections::HashMap;

use envelope::Envelope;
use parking_lot::Mutex;
use serde::Serialize;

/// Sources tracked at once.
pub const MAX_SOURCES: usize = 10_000;
/// Minutes of history per source.
pub const MINUTES: usize = 60;
const NS_PER_MINUTE: i64 = 60_000_000_000;

#[derive(Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sources: HashMap<String, SourceActivity>,
    untracked: u64,
    /// The minute of the last sweep for silent sources.
    swept_minute: i64,
}

struct SourceActivity {
    app_name: String,
    newest_ns: i64,
    /// Ring of (minute, lines, errors), indexed by minute % MINUTES.
    slots: [(i64, u32, u32); MINUTES],
}

/// One source in [`Activity::report`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SourceReport {
    pub source_id: String,
    pub app_name: String,
    /// Unix ns of the newest line (a string, as the API sends int64).
    pub newest: String,
    pub lines_last_hour: u64,
    pub errors_last_hour: u64,
    /// Lines per minute, oldest first, the last entry the current minute.
    pub per_minute: Vec<u32>,
}

impl Activity {
    /// Counts the log lines of a stored batch at `now_ns`.
    pub fn record(&self, batch: &[Envelope], now_ns: i64) {
        let minute = now_ns.div_euclid(NS_PER_MINUTE);
        let mut inner = self.inner.lock();
        for run in crate::runs::log_runs(batch) {
            if !inner.sources.contains_key(run.source_id) && !inner.make_room(minute) {
                inner.untracked += run.lines as u64;
                continue;
            }
            let source = inner
                .sources
                .entry(run.source_id.to_owned())
                .or_insert_with(|| SourceActivity {
                    app_name: String::new(),
                    newest_ns: 0,
                    slots: [(i64::MIN, 0, 0); MINUTES],
                });
            let (mut lines, mut errors) = (0u32, 0u32);
            for env in &batch[run.span] {
                let Some(log) = env.as_log() else { continue };
                lines += 1;
                errors += u32::from(log.r#type == envelope::LogType::Err as i32);
                source.newest_ns = source.newest_ns.max(env.timestamp);
                if let Some(name) = env.tag(envelope::tags::APP_NAME) {
                    if source.app_name != name {
                        name.clone_into(&mut source.app_name);
                    }
                }
            }
            let slot = &mut source.slots[minute.rem_euclid(MINUTES as i64) as usize];
            if slot.0 != minute {
                *slot = (minute, 0, 0);
            }
            slot.1 = slot.1.saturating_add(lines);
            slot.2 = slot.2.saturating_add(errors);
        }
    }

    /// Every tracked source, sorted by source id, as of `now_ns`.
    pub fn report(&self, now_ns: i64) -> Vec<SourceReport> {
        let minute = now_ns.div_euclid(NS_PER_MINUTE);
        let inner = self.inner.lock();
        let mut out: Vec<SourceReport> = inner
            .sources
            .iter()
            .map(|(id, s)| {
                let mut per_minute = vec![0u32; MINUTES];
                let mut errors = 0u64;
                for &(m, lines, errs) in &s.slots {
                    let age = minute.saturating_sub(m);
                    if (0..MINUTES as i64).contains(&age) {
                        per_minute[MINUTES - 1 - age as usize] = lines;
                        errors += u64::from(errs);
                    }
                }
                SourceReport {
                    source_id: id.clone(),
                    app_name: if s.app_name.is_empty() {
                        id.clone()
                    } else {
                        s.app_name.clone()
                    },
                    newest: s.newest_ns.to_string(),
                    lines_last_hour: per_minute.iter().map(|&n| u64::from(n)).sum(),
                    errors_last_hour: errors,
                    per_minute,
                }
            })
            .collect();
        out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        out
    }

    /// Sources not tracked because the table was full of active ones.
    pub fn untracked(&self) -> u64 {
        self.inner.lock().untracked
    }
}

impl Inner {
    /// Whether a new source fits: at the limit, sources silent for the
    /// whole window are forgotten (at most one sweep a minute).
    fn make_room(&mut self, minute: i64) -> bool {
        if self.sources.len() < MAX_SOURCES {
            return true;
        }
        if self.swept_minute != minute {
            self.swept_minute = minute;
            self.sources.retain(|_, s| {
                s.slots
                    .iter()
                    .any(|&(m, lines, _)| lines > 0 && minute.saturating_sub(m) < MINUTES as i64)
            });
        }
        self.sources.len() < MAX_SOURCES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(source: &str, app: Option<&str>, err: bool, ts: i64) -> Envelope {
        let mut env = Envelope::log(
            ts,
            source.to_owned(),
            "0".to_owned(),
            bytes::Bytes::from_static(b"x"),
            if err {
                envelope::LogType::Err
            } else {
                envelope::LogType::Out
            },
        );
        if let Some(app) = app {
            env.tags.insert("app_name".into(), app.into());
        }
        env
    }

    const T0: i64 = 1_795_785_298 * 1_000_000_000;

    #[test]
    fn lines_and_errors_per_minute_over_the_last_hour() {
        let a = Activity::default();
        a.record(
            &[
                line("guid-1", Some("web"), false, T0),
                line("guid-1", Some("web"), true, T0 + 5),
                line("other", None, false, T0),
            ],
            T0,
        );
        a.record(
            &[line("guid-1", Some("web"), false, T0 + 9)],
            T0 + 2 * NS_PER_MINUTE,
        );
        let report = a.report(T0 + 2 * NS_PER_MINUTE);
        assert_eq!(report.len(), 2);
        let web = &report[0];
        assert_eq!(web.source_id, "guid-1");
        assert_eq!(web.app_name, "web");
        assert_eq!(web.lines_last_hour, 3);
        assert_eq!(web.errors_last_hour, 1);
        assert_eq!(web.newest, (T0 + 9).to_string());
        assert_eq!(web.per_minute[MINUTES - 1], 1, "this minute");
        assert_eq!(web.per_minute[MINUTES - 3], 2, "two minutes ago");
        assert_eq!(report[1].app_name, "other", "no app name: the source id");
        // An hour later it is all out of the window.
        let later = a.report(T0 + 63 * NS_PER_MINUTE);
        assert_eq!(later[0].lines_last_hour, 0);
        assert_eq!(later[0].errors_last_hour, 0);
    }

    #[test]
    fn bounded_and_silent_sources_make_room() {
        let a = Activity::default();
        let many: Vec<Envelope> = (0..MAX_SOURCES + 5)
            .map(|i| line(&format!("s{i}"), None, false, T0))
            .collect();
        a.record(&many, T0);
        assert_eq!(a.report(T0).len(), MAX_SOURCES);
        assert_eq!(a.untracked(), 5);
        // An hour of silence later, a new source finds room.
        let later = T0 + 61 * NS_PER_MINUTE;
        a.record(&[line("new", None, false, later)], later);
        let report = a.report(later);
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].source_id, "new");
    }
}
