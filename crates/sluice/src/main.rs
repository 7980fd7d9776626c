//! The `sluice` binary: a thin clap CLI over the library crates.
//!
//! - `sluice server`: run the log subsystem with its embedded defaults;
//! - `sluice run --app NAME -- CMD…`: run an app and ship its output;
//! - `sluice logs [APP]`: tail or dump logs in `cf logs` format;
//! - `sluice drain …`, `sluice format …`: manage drains and saved formats.
//!
//! Output that may hold remote text is escaped on a terminal, and a closed
//! stdout ends a client command quietly with 0 (see [`term`]).

mod client;
mod drain;
mod logs;
mod run;
mod serve;
mod term;

use clap::{Parser, Subcommand};

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
    /// Run the server (ingest, recent store, streams, HTTP API).
    Server(serve::ServerArgs),
    /// Run a command and ship its stdout/stderr to the server.
    Run(run::RunArgs),
    /// Tail live logs, or dump recent ones, in `cf logs` format.
    Logs(logs::LogsArgs),
    /// Manage drains: add, list, delete, status.
    Drain(drain::DrainArgs),
    /// Manage saved drain formats.
    Format(drain::FormatArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => serve::main(args),
        Command::Run(args) => run::main(args),
        Command::Logs(args) => logs::main(args),
        Command::Drain(args) => drain::drain_main(args),
        Command::Format(args) => drain::format_main(args),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) if term::is_stdout_closed(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            say!("sluice: {err:#}");
            std::process::ExitCode::from(1)
        }
    }
}
