//! `sluice logs`: tail live logs, or dump recent ones, like `cf logs`.
//!
//! - `sluice logs web`: the newest entries of app `web` as they come, until
//!   Ctrl-C; `-n N` first replays the newest N stored entries;
//! - `sluice logs web --recent`: the newest 100 (or `-n N`) stored entries,
//!   then exit;
//! - no app: everything; `--types out,err`, `--space`, `--org` filter;
//!   `--json` prints the server's NDJSON envelopes instead of text.
//!
//! Lines are printed in the `cf logs` format (`ERR` lines red on a
//! terminal; control characters from the entries shown escaped, `\x1b`, on
//! a terminal unless `--raw`). When tailing, a lost connection or a restarted server is
//! retried with backoff (a note on stderr) and the stream resumes from just
//! before the last entry printed, skipping repeats ([`dedup`]). A server
//! that cannot be reached is retried when tailing and an error (exit 1) with
//! `--recent`. Ctrl-C and a closed stdout (`| head`) end quietly with 0.

mod dedup;
mod output;
mod query;
mod stream;

use std::io::{self, IsTerminal as _};

use anyhow::{anyhow, Context as _, Result};
use envelope::json::from_json;
use reqwest::Url;

use crate::client::{self, Backoff, ServerArg};
use dedup::Seen;
use output::Printer;
use query::{Filter, LogKind, Replay};
use stream::{ConnectError, End};

/// Entries `--recent` shows unless `-n` says otherwise (as `cf logs --recent`
/// and `heroku logs`).
const DEFAULT_RECENT: usize = 100;
/// Printed entries remembered to skip repeats after a resume.
const DEDUP_CAPACITY: usize = 65_536;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  sluice logs web\n  sluice logs web --recent -n 500\n  sluice logs --types err --json"
)]
pub struct LogsArgs {
    /// App name or source id [default: all apps]
    #[arg(value_name = "APP")]
    app: Option<String>,

    /// Dump recent logs and exit, instead of tailing
    #[arg(long)]
    recent: bool,

    /// Tail live logs (the default)
    #[arg(short = 't', long, conflicts_with = "recent")]
    tail: bool,

    /// Number of recent entries: shown by --recent [default: 100], replayed
    /// before tailing when given
    #[arg(short = 'n', long = "num", value_name = "N")]
    num: Option<usize>,

    /// Print the Log Cache JSON envelopes (NDJSON) instead of text
    #[arg(long)]
    json: bool,

    /// Print entries as they are, even to a terminal (by default control
    /// characters such as ESC are shown escaped there: \x1b)
    #[arg(long)]
    raw: bool,

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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = logs(args, base) => result,
            Ok(()) = tokio::signal::ctrl_c() => Ok(0),
        }
    })
}

async fn logs(args: LogsArgs, base: Url) -> Result<u8> {
    let filter = Filter {
        app: args.app.clone(),
        types: args.types.clone(),
        space: args.space.clone(),
        org: args.org.clone(),
    };
    if io::stderr().is_terminal() {
        crate::say!("{}\n", filter.header());
    }
    let client = client::http_client(args.server.token.as_deref())?;
    let mut out = Output {
        printer: {
            let tty = io::stdout().is_terminal();
            Printer::new(args.json, tty, tty && !args.raw)
        },
        has_token: args.server.token.is_some(),
        seen: Seen::new(DEDUP_CAPACITY, client::now_ns()),
        bad_lines: 0,
    };
    let result = if args.recent {
        let n = args.num.unwrap_or(DEFAULT_RECENT);
        recent(&client, &base, &filter, n, &mut out).await
    } else {
        tail(&client, &base, &filter, args.num, &mut out).await
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

/// `--recent`: one request, replay only.
async fn recent(
    client: &reqwest::Client,
    base: &Url,
    filter: &Filter,
    n: usize,
    out: &mut Output,
) -> Result<u8> {
    let url = filter.url(base, Replay::Recent(n), false);
    let response = match stream::connect(client, url, out.has_token).await {
        Ok(response) => response,
        Err(ConnectError::Retry(why) | ConnectError::Fatal(why)) => {
            return Err(anyhow!("cannot read logs from {base}: {why}"));
        }
    };
    match stream::read(response, out).await {
        End::Closed => Ok(0),
        End::Broken(why) => Err(anyhow!("lost the connection to {base}: {why}")),
        End::Output(err) => output_error(err),
    }
}

/// Tailing: connect, print, and on any trouble reconnect and resume.
async fn tail(
    client: &reqwest::Client,
    base: &Url,
    filter: &Filter,
    num: Option<usize>,
    out: &mut Output,
) -> Result<u8> {
    let mut backoff = Backoff::new();
    let mut connected_once = false;
    let mut trouble = false;
    loop {
        let replay = match (connected_once, num) {
            (false, Some(n)) => Replay::Recent(n),
            (false, None) if !trouble => Replay::Nothing,
            _ => Replay::Since(out.seen.resume_since()),
        };
        let url = filter.url(base, replay, true);
        let end = match stream::connect(client, url, out.has_token).await {
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
                connected_once = true;
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

/// Parses, deduplicates and prints stream lines.
struct Output {
    printer: Printer,
    /// Whether a token is presented (for the hint on a 401).
    has_token: bool,
    seen: Seen,
    bad_lines: u64,
}

impl stream::Sink for Output {
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        let env = match from_json(line) {
            Ok(env) => env,
            Err(err) => {
                self.bad_lines += 1;
                if self.bad_lines == 1 {
                    crate::say!("sluice: skipping a line the server sent: {err}");
                }
                return Ok(());
            }
        };
        if !self.seen.first_time(&env) {
            return Ok(());
        }
        self.printer.entry(line, &env)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.printer.flush()
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
        ])
        .unwrap();
        assert_eq!(args.app.as_deref(), Some("web"));
        assert!(args.recent && args.json && args.raw);
        assert_eq!(args.num, Some(5));
        assert_eq!(args.types, [LogKind::Out, LogKind::Err]);
        assert!(parse(&["--types", "stdin"]).is_err());
        assert!(parse(&["--recent", "--tail"]).is_err());
        let args = parse(&[]).unwrap();
        assert!(args.app.is_none() && !args.recent && !args.raw);
    }
}
