//! Building the stream URL from `sluice logs` arguments.
//!
//! `GET {server}/logs` or `{server}/logs/app:<APP>`, with `types`, `space`
//! and `org` filters, and how much history to replay first: `recent=N`
//! (the newest N), `since=<unix ns>` (`--since`), or `after=<cursor>` (what
//! came after an entry already received, when resuming); `follow=false`
//! ends the response after the replay.

use reqwest::Url;

use crate::client::endpoint;

/// `--types` values: `out`/`stdout`, `err`/`stderr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogKind {
    #[value(alias = "stdout")]
    Out,
    #[value(alias = "stderr")]
    Err,
}

impl LogKind {
    fn param(self) -> &'static str {
        match self {
            LogKind::Out => "stdout",
            LogKind::Err => "stderr",
        }
    }
}

/// What to stream.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub app: Option<String>,
    pub types: Vec<LogKind>,
    pub space: Option<String>,
    pub org: Option<String>,
}

/// What to replay before (or instead of) going live: every stored entry
/// after the cursor `after`, or the newest `recent` stored entries, of
/// those at or after `since` (Unix ns) when given; none: live only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replay {
    pub recent: Option<usize>,
    pub since: Option<i64>,
    pub after: Option<String>,
}

impl Replay {
    /// Live only.
    pub const NOTHING: Replay = Replay {
        recent: None,
        since: None,
        after: None,
    };

    pub fn recent(n: usize) -> Replay {
        Replay {
            recent: Some(n),
            ..Replay::NOTHING
        }
    }

    pub fn since(ns: i64) -> Replay {
        Replay {
            since: Some(ns),
            ..Replay::NOTHING
        }
    }

    /// Everything after the entry whose cursor this is.
    pub fn after(cursor: String) -> Replay {
        Replay {
            after: Some(cursor),
            ..Replay::NOTHING
        }
    }
}

impl Filter {
    /// The stream URL; `follow: false` asks for the replay only.
    pub fn url(&self, base: &Url, replay: &Replay, follow: bool) -> Url {
        let spec = self.app.as_ref().map(|app| format!("app:{app}"));
        let mut segments = vec!["logs"];
        segments.extend(spec.as_deref());
        let mut url = endpoint(base, &segments);
        {
            let mut query = url.query_pairs_mut();
            if !self.types.is_empty() {
                let mut types: Vec<&str> = self.types.iter().map(|t| t.param()).collect();
                types.dedup();
                query.append_pair("types", &types.join(","));
            }
            if let Some(space) = &self.space {
                query.append_pair("space", space);
            }
            if let Some(org) = &self.org {
                query.append_pair("org", org);
            }
            if let Some(n) = replay.recent {
                query.append_pair("recent", &n.to_string());
            }
            if let Some(ns) = replay.since {
                query.append_pair("since", &ns.to_string());
            }
            if let Some(cursor) = &replay.after {
                query.append_pair("after", cursor);
            }
            if !follow {
                query.append_pair("follow", "false");
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    /// `Retrieving logs for app web in org o / space s...`, as cf says it.
    pub fn header(&self) -> String {
        let mut text = match &self.app {
            Some(app) => format!("Retrieving logs for app {app}"),
            None => "Retrieving logs for all apps".to_owned(),
        };
        match (&self.org, &self.space) {
            (Some(org), Some(space)) => text.push_str(&format!(" in org {org} / space {space}")),
            (Some(org), None) => text.push_str(&format!(" in org {org}")),
            (None, Some(space)) => text.push_str(&format!(" in space {space}")),
            (None, None) => {}
        }
        text.push_str("...");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::parse_server_url;

    fn base() -> Url {
        parse_server_url("http://127.0.0.1:8000").unwrap()
    }

    #[test]
    fn everything_live() {
        let url = Filter::default().url(&base(), &Replay::NOTHING, true);
        assert_eq!(url.as_str(), "http://127.0.0.1:8000/logs");
    }

    #[test]
    fn one_app_recent_only() {
        let filter = Filter {
            app: Some("web".into()),
            ..Filter::default()
        };
        let url = filter.url(&base(), &Replay::recent(100), false);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8000/logs/app:web?recent=100&follow=false"
        );
    }

    #[test]
    fn filters_and_resume() {
        let filter = Filter {
            app: Some("my app".into()),
            types: vec![LogKind::Err, LogKind::Err],
            space: Some("dev".into()),
            org: Some("a&b".into()),
        };
        let url = filter.url(&base(), &Replay::since(1_700_000_000_000_000_000), true);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8000/logs/app:my%20app?types=stderr&space=dev&org=a%26b&since=1700000000000000000"
        );
        let url = filter.url(&base(), &Replay::after("v1.42".into()), true);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8000/logs/app:my%20app?types=stderr&space=dev&org=a%26b&after=v1.42"
        );
    }

    #[test]
    fn recent_within_a_window() {
        let replay = Replay {
            recent: Some(5),
            since: Some(7),
            after: None,
        };
        let url = Filter::default().url(&base(), &replay, false);
        assert_eq!(url.query(), Some("recent=5&since=7&follow=false"));
    }

    #[test]
    fn both_types() {
        let filter = Filter {
            types: vec![LogKind::Out, LogKind::Err],
            ..Filter::default()
        };
        let url = filter.url(&base(), &Replay::NOTHING, true);
        assert_eq!(url.query(), Some("types=stdout%2Cstderr"));
    }

    #[test]
    fn headers_read_like_cf() {
        let filter = Filter {
            app: Some("web".into()),
            space: Some("s".into()),
            org: Some("o".into()),
            ..Filter::default()
        };
        assert_eq!(
            filter.header(),
            "Retrieving logs for app web in org o / space s..."
        );
        assert_eq!(
            Filter::default().header(),
            "Retrieving logs for all apps..."
        );
    }
}
