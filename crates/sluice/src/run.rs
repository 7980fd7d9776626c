//! `sluice run`: run a command and ship its stdout and stderr to the server,
//! never slowing it down.
//!
//! ```text
//! readers (stdout, stderr) ──► drop-oldest buffer (--buffer) ──► shipper ──► POST /logs
//!        └──► --tee: sluice's own stdout/stderr (best effort)
//! ```
//!
//! Each output line becomes a log envelope (see [`envelopes`] for what is
//! sent, and [`lines`] for how lines longer than `--max-line` are split).
//! The child's exit code becomes sluice's (128 + N if killed by signal N;
//! 127 if the command is not found, 126 if it cannot be run). When the
//! child has exited, sluice flushes the buffer for at most 2 s and exits;
//! an unreachable server is tried once more and then given up on.
//!
//! SIGPIPE stays ignored and notes to stderr never panic, so a closed
//! stdout or stderr (with `--tee`, or `2>&1 | head`) does not stop sluice or
//! its shipping; the child gets the default SIGPIPE disposition back.

mod batch;
mod buffer;
mod child;
mod clock;
mod envelopes;
mod lines;
mod pipes;
mod shipper;

use std::ffi::OsString;
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use envelope::LogType;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{self, ServerArg};
use buffer::Shared;
use child::Exit;
use clock::Clock;
use envelopes::{Identity, Item};
use shipper::{Settings, Shipper};

/// How long the readers may take to drain the pipes after the child exited
/// (longer only if something the child started still holds them open).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  sluice run --app web -- ./server --port 3000\n  sluice run --app worker --instance 2 --tee -- python worker.py"
)]
pub struct RunArgs {
    /// App name (tag `app_name`) [default: the command's file name]
    #[arg(long, value_name = "NAME")]
    app: Option<String>,

    /// Source id, e.g. the app GUID [default: the app name]
    #[arg(long = "source-id", value_name = "ID")]
    source_id: Option<String>,

    /// Instance id (index) of this process
    #[arg(long, value_name = "N", default_value = "0")]
    instance: String,

    /// `source_type` tag of the app's lines
    #[arg(
        long = "source-type",
        value_name = "TYPE",
        default_value = "APP/PROC/WEB"
    )]
    source_type: String,

    /// Space name (tag `space_name`)
    #[arg(long, value_name = "SPACE")]
    space: Option<String>,

    /// Organization name (tag `organization_name`)
    #[arg(long, value_name = "ORG")]
    org: Option<String>,

    /// Also copy the command's stdout and stderr to sluice's own
    #[arg(long)]
    tee: bool,

    /// Longest line shipped as one message; longer lines are split
    #[arg(long = "max-line", value_name = "BYTES", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(1..=16 * 1024 * 1024))]
    max_line: u64,

    /// Lines held while the server is slow or down; beyond, the oldest are dropped
    #[arg(long, value_name = "LINES", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    buffer: u64,

    #[command(flatten)]
    server: ServerArg,

    /// The command to run, and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

pub fn main(args: RunArgs) -> Result<u8> {
    let server = args.server.url()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(run(args, server));
    // A tee stuck writing to a blocked stdout must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn run(args: RunArgs, server: reqwest::Url) -> Result<u8> {
    let identity = Arc::new(identity(&args));
    let queue = Arc::new(Shared::new(
        usize::try_from(args.buffer).unwrap_or(usize::MAX),
    ));
    let clock = Arc::new(Clock::new());
    let settings = Settings::default();
    let (close, closing) = watch::channel(false);
    let shipper = tokio::spawn(
        Shipper {
            client: client::http_client(args.server.token.as_deref())?,
            has_token: args.server.token.is_some(),
            url: client::endpoint(&server, &["logs"]),
            queue: queue.clone(),
            identity: identity.clone(),
            clock: clock.clone(),
            closing,
            settings,
        }
        .run(),
    );
    let enqueue = |envelopes: Vec<envelope::Envelope>| {
        let items = envelopes.into_iter().map(|e| Item::Envelope(Box::new(e)));
        queue.push_all(items, clock.stamp());
    };

    // Catch signals before the child exists, so none is missed.
    let signals = child::Signals::catch().context("cannot install signal handlers")?;
    let command = child::display_command(&args.command);
    let mut process = match child::spawn(&args.command) {
        Ok(process) => process,
        Err(err) => {
            crate::say!("sluice: cannot run {command}: {}", err.error);
            enqueue(vec![
                identity.failed_to_start(clock.stamp(), &err.error.to_string())
            ]);
            finish(close, shipper, &queue, settings).await;
            return Ok(err.code);
        }
    };
    enqueue(identity.started(clock.stamp(), &command).into());
    let forwarder = process
        .id()
        .map(|pid| tokio::spawn(signals.forward_to(pid)));

    let max_line = usize::try_from(args.max_line).unwrap_or(usize::MAX);
    let mut readers = Vec::new();
    let mut tees = Vec::new();
    if let Some(stdout) = process.stdout.take() {
        pipes::enlarge_pipe(stdout.as_raw_fd());
        let tee = args.tee.then(|| pipes::tee(std::io::stdout()));
        let (tee_tx, tee_task) = tee.unzip();
        tees.extend(tee_task);
        readers.push(tokio::spawn(pipes::pump(
            stdout,
            LogType::Out,
            max_line,
            queue.clone(),
            clock.clone(),
            tee_tx,
        )));
    }
    if let Some(stderr) = process.stderr.take() {
        pipes::enlarge_pipe(stderr.as_raw_fd());
        let tee = args.tee.then(|| pipes::tee(std::io::stderr()));
        let (tee_tx, tee_task) = tee.unzip();
        tees.extend(tee_task);
        readers.push(tokio::spawn(pipes::pump(
            stderr,
            LogType::Err,
            max_line,
            queue.clone(),
            clock.clone(),
            tee_tx,
        )));
    }

    let exit = match process.wait().await {
        Ok(status) => Exit::from_status(status),
        Err(err) => {
            crate::say!("sluice: lost track of the command: {err}");
            Exit::Code(1)
        }
    };
    if let Some(forwarder) = forwarder {
        forwarder.abort();
    }
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    for reader in readers {
        match wait_until(deadline, reader).await {
            Some(stats) => tracing::debug!(?stats, "pipe closed"),
            None => tracing::debug!("pipe still open after the command exited; stopped reading"),
        }
    }
    // Readers are done, so the tee channels are closed; let them drain.
    let tee_deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    for tee in tees {
        let _ = tokio::time::timeout_at(tee_deadline, tee).await;
    }
    enqueue(identity.exited(clock.stamp(), exit).into());
    finish(close, shipper, &queue, settings).await;
    Ok(exit.code())
}

/// Closes the buffer, lets the shipper flush (bounded), and says on stderr
/// what could not be delivered.
async fn finish(
    close: watch::Sender<bool>,
    shipper: JoinHandle<()>,
    queue: &Shared<Item>,
    settings: Settings,
) {
    let _ = close.send(true);
    queue.wake();
    let grace = settings.flush_deadline + Duration::from_millis(500);
    let _ = wait_until(tokio::time::Instant::now() + grace, shipper).await;
    let queue = queue.lock();
    tracing::debug!(dropped = queue.dropped_total(), "shipping ended");
    let undelivered = queue.len() as u64 + queue.loss().map_or(0, |l| l.count);
    if undelivered > 0 {
        crate::say!("sluice: {undelivered} messages not delivered");
    }
}

/// The task's result, or `None` (and the task aborted) at the deadline.
async fn wait_until<T>(deadline: tokio::time::Instant, mut task: JoinHandle<T>) -> Option<T> {
    match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(result) => result.ok(),
        Err(_) => {
            task.abort();
            None
        }
    }
}

fn identity(args: &RunArgs) -> Identity {
    let app_name = args
        .app
        .clone()
        .or_else(|| args.source_id.clone())
        .or_else(|| {
            let program = args.command.first()?;
            Some(
                Path::new(program)
                    .file_name()?
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .unwrap_or_else(|| "app".to_owned());
    Identity::new(
        app_name.clone(),
        args.source_id.clone().unwrap_or(app_name),
        args.instance.clone(),
        args.source_type.clone(),
        args.space.clone(),
        args.org.clone(),
        envelopes::hostname(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(argv: &[&str]) -> RunArgs {
        let argv = std::iter::once("run").chain(argv.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.run).unwrap()
    }

    #[test]
    fn the_command_is_everything_after_the_flags() {
        let args = parse(&["--app", "web", "--tee", "--", "sh", "-c", "echo --app"]);
        assert_eq!(args.command, ["sh", "-c", "echo --app"]);
        assert!(args.tee);
        let args = parse(&["./server", "--port", "3"]);
        assert_eq!(args.command, ["./server", "--port", "3"]);
        assert_eq!(args.max_line, 65536);
        assert_eq!(args.buffer, 10_000);
    }

    #[test]
    fn a_command_is_required() {
        let argv = ["run", "--app", "web"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn identity_defaults() {
        let id = identity(&parse(&["/usr/bin/python3", "app.py"]));
        assert_eq!(id.app_name, "python3");
        assert_eq!(id.source_id, "python3");
        assert_eq!(id.instance_id, "0");
        assert_eq!(id.tag("source_type"), Some("APP/PROC/WEB"));
        let id = identity(&parse(&["--app", "web", "--source-id", "guid", "x"]));
        assert_eq!(
            (id.app_name.as_str(), id.source_id.as_str()),
            ("web", "guid")
        );
    }
}
