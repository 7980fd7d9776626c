//! `sluice agent`: everything `sluice server` does (every flag and config
//! key), plus collection on this host: every Docker container's stdout and
//! stderr, followed from the daemon's socket and resumed exactly after a
//! restart (`sluice-agent`'s `docker`). `sluice agent` alone on a laptop is
//! logspout with history.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent::docker::identity::LabelMatch;
use agent::docker::{self, DockerConfig};
use anyhow::{bail, Context as _, Result};

mod forward;

use crate::client::{self, endpoint, ServerArg};
use crate::serve::{self, ServerArgs};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    command: Option<AgentCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand)]
enum AgentCommand {
    /// What a running agent follows: containers with lines, bytes, position and last error.
    Status(StatusArgs),
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Print the agent's JSON (`GET /v1/agent`) as it is.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The Docker daemon: `unix:///PATH`, a socket path, or `off`
    /// [default: $DOCKER_HOST when it is unix://, else
    /// /var/run/docker.sock when it exists].
    #[arg(long, value_name = "SOCKET")]
    docker: Option<String>,
    /// Follow only containers with this label (KEY or KEY:VALUE;
    /// repeatable: any of them).
    #[arg(long = "include-label", value_name = "KEY[:VALUE]")]
    include_labels: Vec<LabelMatch>,
    /// Never follow containers with this label (KEY or KEY:VALUE;
    /// repeatable). Env LOGSPOUT=ignore or SLUICE=ignore also skips one.
    #[arg(long = "exclude-label", value_name = "KEY[:VALUE]")]
    exclude_labels: Vec<LabelMatch>,
    /// Copy this container label into a tag of the same name (repeatable).
    #[arg(long = "label-tag", value_name = "KEY")]
    label_tags: Vec<String>,
    /// At the very first start, also read what running containers wrote
    /// before the agent (later starts always resume where they stopped).
    #[arg(long)]
    docker_backlog: bool,
    /// Reconnect a container's log stream that was silent this long while
    /// its log file changed (the daemon's follow can stop after a log
    /// rotation) [default: 30].
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    docker_silence: u64,
    /// A host file to follow into `systail.NAME.<host>` (repeatable; the
    /// file name may be a glob: /var/log/*.log).
    #[arg(long = "file", value_name = "NAME=PATH")]
    files: Vec<agent::files::FileSpec>,
    /// Read files seen for the first time from their start (default: from
    /// their end, as `tail -F`).
    #[arg(long)]
    from_start: bool,
    /// At most this much of a file that grew while the agent was away is
    /// read; the rest is skipped and told in-band [default: 16].
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    file_read_limit_mb: u64,
    /// Forward everything collected to a sluice server: grpc://HOST:PORT
    /// (Loggregator v2 ingress, also a Loggregator agent's) or
    /// http(s)://[USER:TOKEN@]HOST:PORT[/PATH] (its `POST /logs`, path
    /// /logs by default, the token as basic-auth password). What the
    /// server has not taken yet waits in the agent's own log (--buffer-mb).
    #[arg(long, value_name = "URL")]
    forward: Option<String>,
    /// ca.crt, client.crt and client.key (from `sluice certs`) for mutual
    /// TLS to --forward.
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// The name on the server's certificate for grpc:// [default: metron,
    /// as `sluice certs` writes it].
    #[arg(long, value_name = "NAME", default_value = "metron")]
    server_name: String,
    /// Disk for what waits to be forwarded; beyond it the oldest is
    /// dropped (counted, and told in the apps' streams) [default: 256].
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    buffer_mb: u64,
}

pub fn main(args: AgentArgs) -> Result<u8> {
    match args.command {
        Some(AgentCommand::Status(status)) => status_main(status),
        None => run(args.run),
    }
}

fn run(args: RunArgs) -> Result<u8> {
    serve::init_tracing();
    if !(1..=3600).contains(&args.docker_silence) {
        bail!("--docker-silence must be 1 to 3600 seconds");
    }
    let mut socket = docker_socket(args.docker.as_deref(), std::env::var("DOCKER_HOST").ok())?;
    let chose_default =
        args.docker.is_none() && socket.as_deref() == Some(docker::DEFAULT_SOCKET.as_ref());
    if chose_default && !std::path::Path::new(docker::DEFAULT_SOCKET).exists() {
        // No Docker on this host, and none asked for: collect nothing
        // from it (an explicit --docker waits for the daemon instead).
        tracing::info!(
            socket = docker::DEFAULT_SOCKET,
            "no Docker daemon socket; Docker collection is off"
        );
        socket = None;
    }
    let mut config = args.server.resolve()?;
    if let Some(url) = &args.forward {
        forward::forward_to(
            &mut config,
            url,
            args.tls_dir.as_deref(),
            &args.server_name,
            args.buffer_mb,
        )?;
    }
    let mut docker_config = socket.map(|socket| DockerConfig::new(socket, &config.data_dir));
    if let Some(d) = docker_config.as_mut() {
        d.rules.include_labels = args.include_labels;
        d.rules.exclude_labels = args.exclude_labels;
        d.rules.label_tags = args.label_tags;
        d.backlog = args.docker_backlog;
        d.silence = Duration::from_secs(args.docker_silence);
    }
    let section: agent::files::AgentSection = config
        .agent
        .clone()
        .try_into()
        .context("the [agent] section of the config")?;
    let mut files = args.files;
    for entry in &section.files {
        files.push(
            entry
                .spec()
                .map_err(|e| anyhow::anyhow!("[[agent.files]]: {e}"))?,
        );
    }
    let mut rules = if section.sieve_defaults {
        agent::sieve::default_rules()
    } else {
        Vec::new()
    };
    rules.extend(section.sieve);
    let sieve =
        agent::sieve::Sieve::new(rules).map_err(|e| anyhow::anyhow!("[[agent.sieve]]: {e}"))?;
    let files_config = (!files.is_empty()).then(|| {
        let mut f = agent::files::FilesConfig::new(files, &config.data_dir);
        f.from_start = args.from_start;
        f.read_limit = args.file_read_limit_mb.saturating_mul(1 << 20).max(1);
        f.sieve = (!sieve.is_empty()).then(|| Arc::new(sieve));
        f
    });
    serve::run_with("agent", config, move |server, shutdown| {
        let mut started = Vec::new();
        let mut docker_status = None;
        let file_positions = files_config
            .as_ref()
            .map(|f| Arc::new(agent::files::FilePositions::open(&f.positions_file)));
        if let (Some(f), Some(positions)) = (files_config, &file_positions) {
            let line = format!("files   {}", f.files.len());
            let task = tokio::spawn(agent::files::run(
                f,
                Arc::clone(positions),
                server.ingest(),
                shutdown.clone(),
            ));
            started.push((task, line));
        }
        if let Some(d) = docker_config {
            let line = format!("docker  {}", d.socket.display());
            let status = Arc::new(docker::status::DockerStatus::default());
            docker_status = Some((Arc::clone(&status), d.socket.display().to_string()));
            let task = tokio::spawn(docker::run(d, server.ingest(), status, shutdown));
            started.push((task, line));
        }
        server.set_agent_status(Arc::new(move || {
            let mut report = serde_json::Map::new();
            if let Some((status, socket)) = &docker_status {
                report.insert(
                    "docker".into(),
                    serde_json::json!({"socket": socket, "containers": status.report()}),
                );
            }
            if let Some(positions) = &file_positions {
                report.insert("files".into(), serde_json::json!(positions.report()));
            }
            serde_json::Value::Object(report)
        }));
        Ok(started)
    })
}

fn status_main(args: StatusArgs) -> Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(status(args))
}

/// `sluice agent status`: one line per container the agent followed.
async fn status(args: StatusArgs) -> Result<u8> {
    let base = args.server.url()?;
    let client = client::http_client(args.server.token.as_deref())?;
    let url = endpoint(&base, &["v1", "agent"]);
    let has_token = args.server.token.is_some();
    let report = client::get_json(&client, &base, url, has_token, "agent status").await?;
    let mut stdout = crate::term::Stdout::new();
    if args.json {
        stdout.json_line(&report.to_string())?;
        return Ok(0);
    }
    let mut out = String::new();
    if report.get("docker").is_some() {
        out.push_str(&docker_table(&report["docker"]));
    }
    if let Some(files) = report.get("files").and_then(|f| f.as_array()) {
        out.push_str(&format!("files\n{:<12}  {:>14}  path\n", "inode", "offset"));
        for f in files {
            out.push_str(&format!(
                "{:<12}  {:>14}  {}\n",
                f["inode"].as_u64().unwrap_or(0),
                f["offset"].as_u64().unwrap_or(0),
                crate::term::escape_controls(f["path"].as_str().unwrap_or("?")),
            ));
        }
    }
    if out.is_empty() {
        out.push_str("(the agent collects nothing: no Docker, no files)\n");
    }
    stdout.line(out.trim_end())?;
    Ok(0)
}

/// One line per container the agent followed.
fn docker_table(docker: &serde_json::Value) -> String {
    let mut out = format!(
        "docker {}\n{:<12}  {:<24}  {:<9}  {:>10}  {:>8}  {:>12}  {:<30}  last error\n",
        docker["socket"].as_str().unwrap_or("-"),
        "container",
        "source",
        "state",
        "lines",
        "dropped",
        "bytes",
        "position"
    );
    let empty = Vec::new();
    let containers = docker["containers"].as_array().unwrap_or(&empty);
    for c in containers {
        let ns = c["position_ns"].as_i64().unwrap_or(0);
        let position = if ns == 0 {
            "-".to_owned()
        } else {
            let mut stamp = Vec::new();
            codec::timestamp::push_rfc3339_nanos(&mut stamp, ns);
            format!(
                "{} +{}",
                String::from_utf8_lossy(&stamp),
                c["position_count"].as_u64().unwrap_or(0)
            )
        };
        out.push_str(&format!(
            "{:<12}  {:<24}  {:<9}  {:>10}  {:>8}  {:>12}  {:<30}  {}\n",
            c["instance_id"].as_str().unwrap_or("?"),
            crate::term::escape_controls(c["source_id"].as_str().unwrap_or("?")),
            if c["following"].as_bool().unwrap_or(false) {
                "following"
            } else {
                "stopped"
            },
            c["lines"].as_u64().unwrap_or(0),
            c["dropped"].as_u64().unwrap_or(0),
            c["bytes"].as_u64().unwrap_or(0),
            position,
            crate::term::escape_controls(c["last_error"].as_str().unwrap_or("-")),
        ));
    }
    if containers.is_empty() {
        out.push_str("(no containers followed yet)\n");
    }
    out
}

/// The daemon socket from `--docker`, else `$DOCKER_HOST`, else the
/// default one; `None` for `off`.
fn docker_socket(flag: Option<&str>, env: Option<String>) -> Result<Option<PathBuf>> {
    let chosen = match (flag, env.as_deref()) {
        (Some(flag), _) => flag,
        (None, Some(env)) if env.starts_with("unix://") => env,
        _ => docker::DEFAULT_SOCKET,
    };
    if chosen == "off" {
        return Ok(None);
    }
    let path = chosen.strip_prefix("unix://").unwrap_or(chosen);
    if path.is_empty() || path.contains("://") {
        bail!("--docker takes unix:///PATH, a socket path or off, not {chosen:?}");
    }
    Ok(Some(PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_comes_from_the_flag_then_docker_host() {
        let pick = |flag, env: Option<&str>| docker_socket(flag, env.map(str::to_owned)).unwrap();
        assert_eq!(
            pick(None, None),
            Some(PathBuf::from(docker::DEFAULT_SOCKET))
        );
        assert_eq!(
            pick(None, Some("unix:///run/d.sock")),
            Some(PathBuf::from("/run/d.sock"))
        );
        assert_eq!(
            pick(None, Some("tcp://1.2.3.4:2375")),
            Some(PathBuf::from(docker::DEFAULT_SOCKET))
        );
        assert_eq!(pick(Some("off"), Some("unix:///x")), None);
        assert_eq!(pick(Some("/s"), None), Some(PathBuf::from("/s")));
        assert!(docker_socket(Some("tcp://x:1"), None).is_err());
    }
}
