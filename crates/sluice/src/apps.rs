//! `sluice apps`: the sources the server holds history for, as `cf apps`
//! lists apps: name, source id, lines held, time of the newest.
//!
//! The sources come from `GET /api/v1/meta`, a page of [`META_PAGE`] at a
//! time (`?limit=&after=`, following `"next"`). The meta has no app names:
//! the name is the `app_name` tag of each source's newest entry, read with
//! `GET /api/v1/read/<id>?limit=1&descending=true`, [`PARALLEL_READS`] at a
//! time. That is one request per source, so names are looked up for the
//! first [`NAME_LOOKUPS`] sources only (by source id); the others, and all
//! with `--no-names`, show their source id as name, and a note on stderr
//! says so. A source whose read fails shows its id too.

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use reqwest::Url;
use serde_json::Value;

use crate::client::{self, endpoint, ServerArg};
use crate::term::Stdout;
use crate::zone::Zone;

/// Sources per meta request.
const META_PAGE: usize = 1_000;
/// Sources whose name is looked up, at most.
const NAME_LOOKUPS: usize = 500;
/// Name look-ups in flight at once.
const PARALLEL_READS: usize = 8;

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  sluice apps\n  name    source id  lines  newest\n  alpha   alpha      3      2026-12-01T14:14:58+01:00"
)]
pub struct AppsArgs {
    /// Print JSON: [{"name","source_id","lines","newest"}…] (newest in Unix ns)
    #[arg(long)]
    json: bool,
    /// Show source ids only, without reading each source's app name
    #[arg(long)]
    no_names: bool,
    /// Show times in UTC [default: the local time zone]
    #[arg(long)]
    utc: bool,
    #[command(flatten)]
    server: ServerArg,
}

/// One source the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    id: String,
    name: Option<String>,
    lines: u64,
    newest: i64,
}

pub fn main(args: AppsArgs) -> Result<u8> {
    let zone = Zone::choose(args.utc);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(apps(args, zone))
}

async fn apps(args: AppsArgs, zone: Zone) -> Result<u8> {
    let base = args.server.url()?;
    let token = args.server.token.is_some();
    let client = client::http_client(args.server.token.as_deref())?;
    let mut sources = list_sources(&client, &base, token).await?;
    if sources.is_empty() {
        crate::say!(
            "sluice: the server holds no logs (history older than the retention, an hour by default, is gone)"
        );
        return Ok(0);
    }
    if !args.no_names {
        let lookups = sources.len().min(NAME_LOOKUPS);
        let names: Vec<Option<String>> = futures_util::stream::iter(&sources[..lookups])
            .map(|s| app_name(&client, &base, &s.id))
            .buffered(PARALLEL_READS)
            .collect()
            .await;
        for (source, name) in sources.iter_mut().zip(names) {
            source.name = name;
        }
        if sources.len() > lookups {
            crate::say!(
                "sluice: {} sources; app names were read for the first {lookups} only (the others show their source id)",
                sources.len()
            );
        }
    }
    sources.sort_by(|a, b| {
        let (an, bn) = (a.shown_name(), b.shown_name());
        an.to_lowercase()
            .cmp(&bn.to_lowercase())
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut out = Stdout::new();
    if args.json {
        let list: Vec<Value> = sources
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.shown_name(), "source_id": s.id, "lines": s.lines, "newest": s.newest,
                })
            })
            .collect();
        out.json_line(&serde_json::to_string_pretty(&list)?)?;
    } else {
        for line in table(&sources, &zone) {
            out.line(&line)?;
        }
    }
    Ok(0)
}

impl Source {
    fn shown_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// Every source in the meta, page by page.
async fn list_sources(client: &reqwest::Client, base: &Url, token: bool) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = endpoint(base, &["api", "v1", "meta"]);
        url.query_pairs_mut()
            .append_pair("limit", &META_PAGE.to_string());
        if let Some(after) = &after {
            url.query_pairs_mut().append_pair("after", after);
        }
        let page = client::get_json(client, base, url, token, "meta").await?;
        let before = sources.len();
        sources.extend(parse_meta(&page));
        match page["next"].as_str() {
            // A `next` that does not move on would loop forever.
            Some(next) if sources.len() > before && after.as_deref() != Some(next) => {
                after = Some(next.to_owned());
            }
            _ => return Ok(sources),
        }
    }
}

/// The sources in one meta answer (counts and times are strings there, as
/// in Log Cache).
fn parse_meta(page: &Value) -> Vec<Source> {
    let number = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .or_else(|| v.as_i64())
            .unwrap_or(0)
    };
    page["meta"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(id, m)| Source {
            id: id.clone(),
            name: None,
            lines: u64::try_from(number(&m["count"])).unwrap_or(0),
            newest: number(&m["newestTimestamp"]),
        })
        .collect()
}

/// The `app_name` tag of the source's newest entry, if it has one.
async fn app_name(client: &reqwest::Client, base: &Url, id: &str) -> Option<String> {
    let mut url = endpoint(base, &["api", "v1", "read", id]);
    url.set_query(Some("limit=1&descending=true"));
    let resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = resp.bytes().await.ok()?;
    let batch = envelope::json::batch_from_json(&body).ok()?;
    let name = batch.batch.first()?.tag(envelope::tags::APP_NAME)?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// `name  source id  lines  newest`, aligned.
fn table(sources: &[Source], zone: &Zone) -> Vec<String> {
    let rows: Vec<[String; 4]> = sources
        .iter()
        .map(|s| {
            [
                s.shown_name().to_owned(),
                s.id.clone(),
                s.lines.to_string(),
                zone.seconds(s.newest),
            ]
        })
        .collect();
    let header = ["name", "source id", "lines", "newest"].map(str::to_owned);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|[name, id, lines, newest]| {
            format!(
                "{name:<w0$}  {id:<w1$}  {lines:<w2$}  {newest}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_pages_parse() {
        let page = serde_json::json!({
            "meta": {
                "alpha": {"count": "3", "expired": "0", "oldestTimestamp": "1", "newestTimestamp": "1795266898000000000"},
                "odd": {"count": "x"},
            },
            "next": "odd",
        });
        assert_eq!(
            parse_meta(&page),
            [
                Source {
                    id: "alpha".into(),
                    name: None,
                    lines: 3,
                    newest: 1_795_266_898_000_000_000
                },
                Source {
                    id: "odd".into(),
                    name: None,
                    lines: 0,
                    newest: 0
                },
            ]
        );
        assert!(parse_meta(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn the_table_is_aligned() {
        let sources = [
            Source {
                id: "guid-1".into(),
                name: Some("alpha".into()),
                lines: 12,
                newest: 1_795_266_898_000_000_000,
            },
            Source {
                id: "b".into(),
                name: None,
                lines: 3,
                newest: 1_795_266_899_000_000_000,
            },
        ];
        assert_eq!(
            table(&sources, &Zone::utc()),
            [
                "name   source id  lines  newest",
                "alpha  guid-1     12     2026-11-21T13:14:58+00:00",
                "b      b          3      2026-11-21T13:14:59+00:00",
            ]
        );
    }
}
