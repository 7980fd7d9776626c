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
use anyhow::{bail, Result};

use crate::serve::{self, ServerArgs};

#[derive(clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The Docker daemon: `unix:///PATH`, a socket path, or `off`
    /// [default: $DOCKER_HOST when it is unix://, else
    /// /var/run/docker.sock].
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
}

pub fn main(args: AgentArgs) -> Result<u8> {
    serve::init_tracing();
    if !(1..=3600).contains(&args.docker_silence) {
        bail!("--docker-silence must be 1 to 3600 seconds");
    }
    let socket = docker_socket(args.docker.as_deref(), std::env::var("DOCKER_HOST").ok())?;
    let config = args.server.resolve()?;
    let mut docker_config = socket.map(|socket| DockerConfig::new(socket, &config.data_dir));
    if let Some(d) = docker_config.as_mut() {
        d.rules.include_labels = args.include_labels;
        d.rules.exclude_labels = args.exclude_labels;
        d.rules.label_tags = args.label_tags;
        d.backlog = args.docker_backlog;
        d.silence = Duration::from_secs(args.docker_silence);
    }
    serve::run_with(config, move |server, shutdown| {
        let mut started = Vec::new();
        if let Some(d) = docker_config {
            let line = format!("docker  {}", d.socket.display());
            let status = Arc::new(docker::status::DockerStatus::default());
            let task = tokio::spawn(docker::run(d, server.ingest(), status, shutdown));
            started.push((task, line));
        }
        Ok(started)
    })
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
