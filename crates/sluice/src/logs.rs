//! `sluice logs`: tail live logs, or dump recent ones, like `cf logs` and
//! `heroku logs`.
//!
//! - `sluice logs web` (or `-a web`): the entries of app `web` as they
//!   come, until Ctrl-C; `-n N` first shows the newest N lines;
//! - `sluice logs web --recent`: the newest 100 (or `-n N`) lines, then
//!   exit;
//! - `--since 10m` / `--since 2026-12-01T10:00:00Z`: from that time on
//!   (with `--recent`: all of them, or the newest `-n N`);
//! - no app: everything; `--types out,err`, `--space`, `--org` filter on the
//!   server, Heroku's `-s/--source` and `-d/--dyno` on the client
//!   ([`view`]); a view that can hold more than one app names the app on
//!   each line ([`output`]);
//! - `--output heroku` prints Heroku's lines, `--json` the server's NDJSON
//!   envelopes; times are local unless `--utc` ([`crate::zone`]).
//!
//! `-n N` prints exactly the last N lines the view shows: the server is
//! asked for more entries than that (filters here, events hidden by the
//! text formats, multi-line payloads) and again for more while too few
//! came and the server had more, up to its replay limit; then the output
//! is cut to N, so nothing shows before the whole answer came (memory
//! holds at most N lines). `--recent --since` without `-n` cuts nothing
//! and prints as the answer comes.
//!
//! Empty results are said on stderr: `--recent` that shows nothing says
//! `no logs for APP in the last hour` (exit 0); a tail of an app of which
//! the server holds nothing says once that nothing was logged by it yet,
//! and keeps waiting. sluice has no list of apps, only the logs it holds
//! (about the last hour), so it never claims an app does not exist.
//!
//! Lines are printed in the `cf logs` format (`ERR` lines red on a
//! terminal; control characters from the entries shown escaped, `\x1b`, on
//! a terminal unless `--raw`). When tailing, a lost connection or a
//! restarted server is retried with backoff (a note on stderr) and the
//! stream resumes right after the last entry received, by its cursor: no
//! line missed, none twice ([`resume`]). A server that cannot be reached is
//! retried when tailing and an error (exit 1) with `--recent`. Ctrl-C and a
//! closed stdout (`| head`) end quietly with 0.

mod output;
mod query;
mod resume;
mod stream;
mod view;

use std::collections::VecDeque;
use std::io::{self, IsTerminal as _};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use envelope::json::from_json;
use envelope::time::now_ns;
use envelope::Envelope;
use reqwest::Url;

use crate::client::{self, Backoff, ServerArg};
use crate::zone::Zone;
use output::{Format, Printer, Renderer};
use query::{Filter, LogKind, Replay};
use resume::{Resume, START_SLACK_NS};
use stream::{ConnectError, End};
use view::View;

/// Lines `--recent` shows unless `-n` says otherwise (as `cf logs --recent`
/// and `heroku logs`).
const DEFAULT_RECENT: usize = 100;
/// The most entries the server replays in one answer (its `MAX_REPLAY`).
const MAX_REPLAY: usize = 100_000;
/// How long the check for an app's history may take before the tail
/// starts without it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  sluice logs web
  sluice logs web --recent -n 500
  sluice logs --recent --since 10m
  sluice logs -a web -s app -d web.1 --output heroku
  sluice logs --types err --json")]
pub struct LogsArgs {
    /// App name or source id [default: all apps]
    #[arg(value_name = "APP", conflicts_with = "app_flag")]
    app: Option<String>,

    /// App name or source id (as APP; Heroku's -a)
    #[arg(short = 'a', long = "app", value_name = "APP")]
    app_flag: Option<String>,

    /// Dump recent logs and exit, instead of tailing
    #[arg(long)]
    recent: bool,

    /// Tail live logs (the default)
    #[arg(short = 't', long, conflicts_with = "recent")]
    tail: bool,

    /// Number of lines: the last N shown by --recent [default: 100], shown
    /// before tailing when given
    #[arg(short = 'n', long = "num", value_name = "N")]
    num: Option<usize>,

    /// Only entries from this time on: a duration back from now (10m, 2h,
    /// 1h30m, 1d) or a time (2026-12-01T10:00:00Z; local without an offset)
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,

    /// Only this source: Heroku's app or heroku, a source type
    /// (APP/PROC/WEB, RTR, router) or its first parts (app matches APP/...)
    #[arg(short = 's', long, value_name = "SOURCE")]
    source: Option<String>,

    /// Only this dyno or instance: web.1 (process type web, instance 1),
    /// web (every web instance), router, or an instance id
    #[arg(short = 'd', long = "dyno", visible_alias = "ps", value_name = "NAME")]
    dyno: Option<String>,

    /// Line format
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Cf)]
    output: Format,

    /// Print the Log Cache JSON envelopes (NDJSON) instead of text (as
    /// --output json)
    #[arg(long)]
    json: bool,

    /// Print entries as they are, even to a terminal (by default control
    /// characters such as ESC are shown escaped there: \x1b)
    #[arg(long)]
    raw: bool,

    /// Show times in UTC [default: the local time zone, from TZ or
    /// /etc/localtime]
    #[arg(long)]
    utc: bool,

    /// Only these log types
    #[arg(long, value_name = "out,err", value_delimiter = ',')]
    types: Vec<LogKind>,

    /// Only this space (tag `space_name`)
    #[arg(long, value_name = "SPACE")]
    space: Option<String>,

    /// Only this organization (tag `organization_name`)
    #[arg(long, value_name = "ORG")]
    org: Option<String>,

    #[command(flatten)]
    server: ServerArg,
}

pub fn main(args: LogsArgs) -> Result<u8> {
    let base = args.server.url()?;
    let zone = Zone::choose(args.utc);
    let since = match &args.since {
        Some(text) => Some(zone.parse_since(text, now_ns())?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = logs(args, base, zone, since) => result,
            Ok(()) = tokio::signal::ctrl_c() => Ok(0),
        }
    })
}

/// What every request of one `sluice logs` shares.
struct Ctx {
    client: reqwest::Client,
    base: Url,
    filter: Filter,
    /// `--since`, in Unix ns.
    since: Option<i64>,
    zone: Zone,
}

async fn logs(args: LogsArgs, base: Url, zone: Zone, since: Option<i64>) -> Result<u8> {
    let filter = Filter {
        app: args.app_flag.clone().or_else(|| args.app.clone()),
        types: args.types.clone(),
        space: args.space.clone(),
        org: args.org.clone(),
    };
    if io::stderr().is_terminal() {
        crate::say!("{}\n", filter.header());
    }
    let format = if args.json { Format::Json } else { args.output };
    let tty = io::stdout().is_terminal();
    let mut out = Output {
        // A view without an app can hold several.
        renderer: Renderer::new(
            format,
            tty,
            tty && !args.raw,
            filter.app.is_none(),
            zone.clone(),
        ),
        view: View {
            types: args.types.clone(),
            source: args.source.clone(),
            dyno: args.dyno.clone(),
            logs_only: format != Format::Json,
        },
        printer: Printer::new(),
        scratch: Vec::new(),
        has_token: args.server.token.is_some(),
        resume: Resume::new(since.unwrap_or_else(|| now_ns().saturating_sub(START_SLACK_NS))),
        shown: 0,
        bad_lines: 0,
    };
    let ctx = Ctx {
        client: client::http_client(args.server.token.as_deref())?,
        base,
        filter,
        since,
        zone,
    };
    let result = if args.recent {
        match (args.num, since) {
            (None, Some(_)) => everything_since(&ctx, &mut out).await,
            (n, _) => recent(&ctx, n.unwrap_or(DEFAULT_RECENT), &mut out).await,
        }
    } else {
        tail(&ctx, args.num, &mut out).await
    };
    // Whatever happened, print what was received; a closed stdout is fine.
    let flushed = out.printer.flush();
    match (result, flushed) {
        (Err(err), _) => Err(err),
        (Ok(_), Err(err)) if err.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow!(err).context("cannot write to stdout"))
        }
        (Ok(code), _) => Ok(code),
    }
}

/// `--recent`: the last `n` lines, then exit.
async fn recent(ctx: &Ctx, n: usize, out: &mut Output) -> Result<u8> {
    if n == 0 {
        return Ok(0);
    }
    let last = match last_lines(ctx, n, out).await {
        Ok(last) => last,
        Err(ConnectError::Retry(why) | ConnectError::Fatal(why)) => {
            return Err(anyhow!("cannot read logs from {}: {why}", ctx.base));
        }
    };
    if last.lines.is_empty() {
        say_empty(ctx, &out.view).await;
    }
    match out.printer.lines(&last.lines) {
        Ok(()) => Ok(0),
        Err(err) => output_error(err),
    }
}

/// `--recent --since` without `-n`: every entry since then (up to the
/// server's replay limit), printed as it comes: nothing is cut, so
/// nothing needs holding back.
async fn everything_since(ctx: &Ctx, out: &mut Output) -> Result<u8> {
    let replay = Replay {
        recent: Some(MAX_REPLAY),
        since: ctx.since,
        after: None,
    };
    let url = ctx.filter.url(&ctx.base, &replay, false);
    let end = match stream::connect(&ctx.client, url, out.has_token).await {
        Ok(response) => stream::read(response, out).await,
        Err(ConnectError::Retry(why) | ConnectError::Fatal(why)) => {
            return Err(anyhow!("cannot read logs from {}: {why}", ctx.base));
        }
    };
    match end {
        End::Closed if out.shown == 0 => say_empty(ctx, &out.view).await,
        End::Closed => {}
        End::Broken(why) => {
            return Err(anyhow!(
                "cannot read logs from {}: lost the connection: {why}",
                ctx.base
            ));
        }
        End::Output(err) => return output_error(err),
    }
    Ok(0)
}

/// Says on stderr that the view is empty, and whether the server is.
async fn say_empty(ctx: &Ctx, view: &View) {
    let mut note = format!("sluice: {}", empty_note(ctx, view));
    if server_is_empty(ctx).await == Some(true) {
        note.push_str("; the server holds no logs at all");
    }
    crate::say!("{note}");
}

/// `no logs for web in the last hour`, with what narrowed the view.
fn empty_note(ctx: &Ctx, view: &View) -> String {
    let filter = &ctx.filter;
    let mut note = "no logs".to_owned();
    if let Some(app) = &filter.app {
        note.push_str(&format!(" for {app}"));
    }
    match (&filter.org, &filter.space) {
        (Some(org), Some(space)) => note.push_str(&format!(" in org {org} / space {space}")),
        (Some(org), None) => note.push_str(&format!(" in org {org}")),
        (None, Some(space)) => note.push_str(&format!(" in space {space}")),
        (None, None) => {}
    }
    let narrowed: Vec<&str> = [
        (!view.types.is_empty()).then_some("--types"),
        view.source.is_some().then_some("--source"),
        view.dyno.is_some().then_some("--dyno"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !narrowed.is_empty() {
        note.push_str(&format!(" matching {}", narrowed.join(" ")));
    }
    match ctx.since {
        Some(ns) => note.push_str(&format!(" since {}", ctx.zone.seconds(ns))),
        None => note.push_str(" in the last hour"),
    }
    crate::term::escape_controls(&note).into_owned()
}

/// Whether the server holds no logs of any source (`/api/v1/meta`); `None`
/// when it cannot tell.
async fn server_is_empty(ctx: &Ctx) -> Option<bool> {
    let mut url = client::endpoint(&ctx.base, &["api", "v1", "meta"]);
    url.set_query(Some("limit=1"));
    let response = tokio::time::timeout(PROBE_TIMEOUT, ctx.client.get(url).send())
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = tokio::time::timeout(PROBE_TIMEOUT, response.bytes())
        .await
        .ok()?
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    Some(v["meta"].as_object()?.is_empty())
}

/// Whether the server holds no entry of `app` at all (ignoring every other
/// filter); `None` when it cannot tell.
async fn app_is_unseen(ctx: &Ctx, app: &str, has_token: bool) -> Option<bool> {
    let only_app = Filter {
        app: Some(app.to_owned()),
        ..Filter::default()
    };
    let url = only_app.url(&ctx.base, &Replay::recent(1), false);
    let probe = async {
        let response = stream::connect(&ctx.client, url, has_token).await.ok()?;
        let body = response.bytes().await.ok()?;
        Some(body.iter().all(u8::is_ascii_whitespace))
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe).await.ok()?
}

/// The last `n` lines of the view (of the entries since `--since`), and
/// how many entries were received (noted in `out.resume`).
async fn last_lines(ctx: &Ctx, n: usize, out: &mut Output) -> Result<Collected, ConnectError> {
    // Room for what the view hides; more is asked for when that was not
    // enough and the server had more.
    let mut ask = n.saturating_add(n / 2).saturating_add(16).min(MAX_REPLAY);
    loop {
        let replay = Replay {
            recent: Some(ask),
            since: ctx.since,
            after: None,
        };
        let url = ctx.filter.url(&ctx.base, &replay, false);
        let response = stream::connect(&ctx.client, url, out.has_token).await?;
        let mut collect = Collect::new(out, n);
        match stream::read(response, &mut collect).await {
            End::Closed => {}
            End::Broken(why) => {
                return Err(ConnectError::Retry(format!("lost the connection: {why}")));
            }
            End::Output(err) => return Err(ConnectError::Retry(err.to_string())),
        }
        let got = collect.finish();
        if got.received < ask || got.lines.len() >= n || ask >= MAX_REPLAY {
            return Ok(got);
        }
        ask = ask.saturating_mul(4).min(MAX_REPLAY);
    }
}

/// Tailing: connect, print, and on any trouble reconnect and resume.
async fn tail(ctx: &Ctx, num: Option<usize>, out: &mut Output) -> Result<u8> {
    let base = &ctx.base;
    if let Some(app) = &ctx.filter.app {
        if app_is_unseen(ctx, app, out.has_token).await == Some(true) {
            crate::say!(
                "sluice: nothing logged by {} yet (the server keeps about the last hour); \
                 waiting for its logs...",
                crate::term::escape_controls(app)
            );
        }
    }
    let mut backoff = Backoff::new();
    let mut trouble = false;
    let num = num.unwrap_or(0);
    // Only the first connection of a plain tail starts live; every other
    // one resumes: after the `-n` replay, at `--since`, after a reconnect.
    let mut live_only = num == 0 && ctx.since.is_none();
    // `-n N`: the last N lines first.
    let mut replayed = num == 0;
    while !replayed {
        match last_lines(ctx, num, out).await {
            Ok(last) => {
                if std::mem::take(&mut trouble) {
                    crate::say!("sluice: connected to {base}");
                }
                if let Err(err) = out.printer.lines(&last.lines) {
                    return output_error(err);
                }
                if let Err(err) = out.printer.flush() {
                    return output_error(err);
                }
                backoff.reset();
                replayed = true;
            }
            Err(ConnectError::Fatal(why)) => {
                return Err(anyhow!("cannot stream logs from {base}: {why}"));
            }
            Err(ConnectError::Retry(why)) => {
                if !std::mem::replace(&mut trouble, true) {
                    crate::say!("sluice: cannot reach {base}: {why}; retrying...");
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    loop {
        let replay = if std::mem::take(&mut live_only) {
            Replay::NOTHING
        } else {
            out.resume.replay()
        };
        let url = ctx.filter.url(base, &replay, true);
        let end = match stream::connect(&ctx.client, url, out.has_token).await {
            Err(ConnectError::Fatal(why)) => {
                return Err(anyhow!("cannot stream logs from {base}: {why}"));
            }
            Err(ConnectError::Retry(why)) => {
                if !std::mem::replace(&mut trouble, true) {
                    crate::say!("sluice: cannot reach {base}: {why}; retrying...");
                }
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
            Ok(response) => {
                if std::mem::take(&mut trouble) {
                    crate::say!("sluice: connected to {base}");
                }
                backoff.reset();
                stream::read(response, out).await
            }
        };
        match end {
            End::Output(err) => return output_error(err),
            End::Closed => crate::say!("sluice: the server closed the stream; reconnecting..."),
            End::Broken(why) => crate::say!("sluice: lost the connection ({why}); reconnecting..."),
        }
        trouble = true;
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// A closed stdout ends quietly; other write errors are errors.
fn output_error(err: io::Error) -> Result<u8> {
    if err.kind() == io::ErrorKind::BrokenPipe {
        Ok(0)
    } else {
        Err(anyhow!(err).context("cannot write to stdout"))
    }
}

/// Parses, notes where to resume, filters, renders and prints.
struct Output {
    renderer: Renderer,
    view: View,
    printer: Printer,
    /// Lines of the entry being printed.
    scratch: Vec<String>,
    /// Whether a token is presented (for the hint on a 401).
    has_token: bool,
    /// Where a reconnect resumes: after the last entry received.
    resume: Resume,
    /// Lines printed.
    shown: usize,
    bad_lines: u64,
}

impl Output {
    /// The envelope on a stream line; a line that is not one is skipped
    /// (said once).
    fn parse(&mut self, line: &[u8]) -> Option<Envelope> {
        match from_json(line) {
            Ok(env) => Some(env),
            Err(err) => {
                self.bad_lines += 1;
                if self.bad_lines == 1 {
                    crate::say!("sluice: skipping a line the server sent: {err}");
                }
                None
            }
        }
    }
}

impl stream::Sink for Output {
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        let Some(env) = self.parse(line) else {
            return Ok(());
        };
        self.resume.received(line, env.timestamp);
        if !self.view.shows(&env) {
            return Ok(());
        }
        self.scratch.clear();
        self.renderer.render(line, &env, &mut self.scratch);
        self.shown += self.scratch.len();
        self.printer.lines(&self.scratch)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.printer.flush()
    }
}

/// Keeps the last lines of a replay instead of printing them.
struct Collect<'a> {
    out: &'a mut Output,
    lines: VecDeque<String>,
    keep: usize,
    scratch: Vec<String>,
    received: usize,
}

/// What a replay gave: the last lines, and how many entries came.
struct Collected {
    lines: VecDeque<String>,
    received: usize,
}

impl<'a> Collect<'a> {
    fn new(out: &'a mut Output, keep: usize) -> Self {
        Collect {
            out,
            lines: VecDeque::new(),
            keep,
            scratch: Vec::new(),
            received: 0,
        }
    }

    fn finish(self) -> Collected {
        Collected {
            lines: self.lines,
            received: self.received,
        }
    }
}

impl stream::Sink for Collect<'_> {
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        self.received += 1;
        let Some(env) = self.out.parse(line) else {
            return Ok(());
        };
        self.out.resume.received(line, env.timestamp);
        if !self.out.view.shows(&env) {
            return Ok(());
        }
        self.scratch.clear();
        self.out.renderer.render(line, &env, &mut self.scratch);
        for line in self.scratch.drain(..) {
            self.lines.push_back(line);
            if self.lines.len() > self.keep {
                self.lines.pop_front();
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        logs: LogsArgs,
    }

    fn parse(argv: &[&str]) -> Result<LogsArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("logs").chain(argv.iter().copied())).map(|c| c.logs)
    }

    #[test]
    fn flags_parse() {
        let args = parse(&[
            "web",
            "--recent",
            "-n",
            "5",
            "--types",
            "out,stderr",
            "--json",
            "--raw",
            "--utc",
            "--since",
            "10m",
        ])
        .unwrap();
        assert_eq!(args.app.as_deref(), Some("web"));
        assert!(args.recent && args.json && args.raw && args.utc);
        assert_eq!(args.num, Some(5));
        assert_eq!(args.since.as_deref(), Some("10m"));
        assert_eq!(args.types, [LogKind::Out, LogKind::Err]);
        assert!(parse(&["--types", "stdin"]).is_err());
        assert!(parse(&["--recent", "--tail"]).is_err());
        let args = parse(&[]).unwrap();
        assert!(args.app.is_none() && !args.recent && !args.raw && !args.utc);
        assert_eq!(args.output, Format::Cf);
    }

    #[test]
    fn heroku_flags_parse() {
        let args = parse(&[
            "-a", "web", "-t", "-n", "3", "-s", "app", "-d", "web.1", "--output", "heroku",
        ])
        .unwrap();
        assert_eq!(args.app_flag.as_deref(), Some("web"));
        assert!(args.tail && !args.recent);
        assert_eq!(args.num, Some(3));
        assert_eq!(args.source.as_deref(), Some("app"));
        assert_eq!(args.dyno.as_deref(), Some("web.1"));
        assert_eq!(args.output, Format::Heroku);
        let args = parse(&["--app", "web", "--num", "2", "--ps", "router"]).unwrap();
        assert_eq!(args.dyno.as_deref(), Some("router"));
        assert_eq!(args.num, Some(2));
        assert!(parse(&["--dyno", "web.2", "--source", "heroku"]).is_ok());
        // One app, either way.
        assert!(parse(&["web", "-a", "api"]).is_err());
        assert!(parse(&["--output", "xml"]).is_err());
    }

    fn ctx(app: Option<&str>, since: Option<i64>) -> Ctx {
        Ctx {
            client: reqwest::Client::new(),
            base: crate::client::parse_server_url("http://127.0.0.1:1").unwrap(),
            filter: Filter {
                app: app.map(str::to_owned),
                ..Filter::default()
            },
            since,
            zone: Zone::utc(),
        }
    }

    #[test]
    fn empty_notes_say_what_was_empty() {
        let view = View::default();
        assert_eq!(
            empty_note(&ctx(Some("nosuchapp"), None), &view),
            "no logs for nosuchapp in the last hour"
        );
        assert_eq!(
            empty_note(&ctx(None, None), &view),
            "no logs in the last hour"
        );
        let mut c = ctx(Some("web"), Some(1_795_266_898_000_000_000));
        c.filter.space = Some("dev".into());
        let narrow = View {
            types: vec![LogKind::Err],
            dyno: Some("web.1".into()),
            ..View::default()
        };
        assert_eq!(
            empty_note(&c, &narrow),
            "no logs for web in space dev matching --types --dyno since 2026-11-21T13:14:58+00:00"
        );
        assert_eq!(
            empty_note(&ctx(Some("a\x1bb"), None), &view),
            "no logs for a\\x1bb in the last hour"
        );
    }
}
