//! The `sluice` binary: a thin clap CLI over the library crates.
//!
//! - `sluice server`: run the log subsystem with its embedded defaults;
//! - `sluice run --app NAME -- CMD…`: run an app and ship its output;
//! - `sluice logs [APP]`: tail or dump logs in `cf logs` format;
//! - `sluice drain …`, `sluice format …`: manage drains and saved formats;
//! - `sluice apps`: the sources the server holds history for;
//! - `sluice check`: verify a data directory offline;
//! - `sluice certs DIR`: a CA and gRPC server/client certificates;
//! - `sluice health`: ingress, egress and loss with alert levels;
//! - `sluice emit`: numbered lines over gRPC or syslog, verified;
//! - `sluice completions bash|zsh|fish`: a shell completion script.
//!
//! Output that may hold remote text is escaped on a terminal, and a closed
//! stdout ends a client command quietly with 0 (see [`term`]).

mod agent;
mod apps;
mod certs;
mod check;
mod client;
mod cluster;
mod drain;
mod emit;
mod health;
mod logs;
mod nozzle;
mod run;
mod serve;
mod term;
mod zone;

use clap::{CommandFactory as _, Parser, Subcommand};

/// mimalloc instead of glibc's allocator: ingest allocates a few small
/// objects per message (envelope strings, tags, the shared entry) and frees
/// them on other threads; profiling showed glibc's malloc/free at about half
/// of the server's CPU under load, mimalloc (well kept, used by many Rust
/// servers) cuts that sharply. See bench/README.md for the numbers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Collect, keep, stream and drain application logs.
#[derive(Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (ingest, the durable log, streams, drains, HTTP API).
    Server(serve::ServerArgs),
    /// Run the server and collect this host's logs: Docker containers' stdout/stderr, host files.
    Agent(Box<agent::AgentArgs>),
    /// Run a command and ship its stdout/stderr to the server.
    Run(run::RunArgs),
    /// Tail live logs, or dump recent ones, as `cf logs` or `heroku logs` show them.
    Logs(logs::LogsArgs),
    /// Manage drains: add, list, delete, status, test, restart.
    Drain(drain::DrainArgs),
    /// Manage saved drain formats: set, list, delete.
    Format(drain::FormatArgs),
    /// List the apps (sources) the server holds logs for.
    Apps(apps::AppsArgs),
    /// Verify a data directory offline: log segments, checksums, drain cursors.
    Check(check::CheckArgs),
    /// Write a CA and server/client certificates for gRPC with mutual TLS.
    Certs(certs::CertsArgs),
    /// Ingress, egress and loss over the last minute and hour, with alert levels.
    Health(health::HealthArgs),
    /// A cluster's nodes, stream and drain owners (servers run with --nats).
    Cluster(cluster::ClusterArgs),
    /// Send numbered lines over gRPC, syslog or HTTP, and verify they all arrived.
    Emit(emit::EmitArgs),
    /// Read the firehose over gRPC (selectors, shard groups); print or measure it.
    Nozzle(nozzle::NozzleArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Install:
  sluice completions bash > /etc/bash_completion.d/sluice
  sluice completions zsh > \"${fpath[1]}/_sluice\"
  sluice completions fish > ~/.config/fish/completions/sluice.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => serve::main(args),
        Command::Agent(args) => agent::main(*args),
        Command::Run(args) => run::main(args),
        Command::Logs(args) => logs::main(args),
        Command::Drain(args) => drain::drain_main(args),
        Command::Format(args) => drain::format_main(args),
        Command::Apps(args) => apps::main(args),
        Command::Check(args) => check::main(args),
        Command::Certs(args) => certs::main(args),
        Command::Health(args) => health::main(args),
        Command::Cluster(args) => cluster::main(args),
        Command::Emit(args) => emit::main(args),
        Command::Nozzle(args) => nozzle::main(args),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) if term::is_stdout_closed(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            say!("sluice: {}", error_text(&err));
            std::process::ExitCode::from(1)
        }
    }
}

/// Writes the completion script for `shell` to stdout.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(term::stdout_error)?;
    Ok(0)
}

/// `err` and its causes joined by `: `, each said once. Errors that embed
/// their source in their own message and also return it from `source()`
/// (thiserror's `{source}` with a `source` field) would otherwise print it
/// twice: `cannot listen on http 127.0.0.1:8000: Address already in use (os
/// error 98): Address already in use (os error 98)`. A cause is skipped
/// when the text so far already ends with it.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if message.is_empty() || text.ends_with(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like the server's StartError: the source is in the message and in
    /// `source()`.
    #[derive(Debug)]
    struct Bind(std::io::Error);

    impl std::fmt::Display for Bind {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot listen on http 127.0.0.1:8000: {}", self.0)
        }
    }

    impl std::error::Error for Bind {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completion_scripts_know_the_commands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut script);
            let script = String::from_utf8(script).unwrap();
            for word in ["logs", "drain", "apps", "--recent", "--output"] {
                assert!(script.contains(word), "{shell:?}: {word}");
            }
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::other("Address already in use (os error 98)");
        let err = anyhow::Error::new(Bind(io)).context("starting the server");
        assert_eq!(
            error_text(&err),
            "starting the server: cannot listen on http 127.0.0.1:8000: Address already in use (os error 98)"
        );
        // Causes that are not repeated are all kept.
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(error_text(&err), "outer: middle: inner");
    }
}
