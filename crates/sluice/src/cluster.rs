//! `sluice cluster status`: the cluster's nodes, its JetStream stream and
//! its drains, from `GET /v1/cluster` and `GET /v1/drains` of any node.
//! Exit 0 when the cluster is healthy, 1 when the answering node sees it
//! degraded (not connected to NATS, or buffering what the stream does not
//! take).

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::client::{self, endpoint, ServerArg};

#[derive(clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(clap::Subcommand)]
enum ClusterCommand {
    /// Nodes (alive, drains owned, ingest rate), the stream (messages,
    /// bytes, replicas, leader) and drains (owner, behind).
    Status {
        /// Print the server's JSON as it is
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
}

pub fn main(args: ClusterArgs) -> Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(match args.command {
            ClusterCommand::Status { json, server } => status(json, server),
        })
}

async fn status(json: bool, server: ServerArg) -> Result<u8> {
    let base = server.url()?;
    let has_token = server.token.is_some();
    let http = client::http_client(server.token.as_deref())?;
    let cluster = client::get_json(
        &http,
        &base,
        endpoint(&base, &["v1", "cluster"]),
        has_token,
        "cluster status",
    )
    .await?;
    let drains = client::get_json(
        &http,
        &base,
        endpoint(&base, &["v1", "drains"]),
        has_token,
        "drains",
    )
    .await?;
    let mut stdout = crate::term::Stdout::new();
    if json {
        let both = serde_json::json!({ "cluster": cluster, "drains": drains });
        stdout.json_line(&both.to_string())?;
    } else {
        stdout.line(&render(&cluster, &drains, envelope::time::now_ns()))?;
    }
    Ok(u8::from(cluster["degraded"].as_bool().unwrap_or(true)))
}

/// The human form of `sluice cluster status`.
fn render(cluster: &Value, drains: &Value, now: i64) -> String {
    let mut out = String::new();
    let degraded = cluster["degraded"].as_bool().unwrap_or(true);
    out.push_str(&format!(
        "cluster: {} (as node {} sees it)\n\nnodes:\n",
        if degraded { "DEGRADED" } else { "ok" },
        cluster["node_id"].as_str().unwrap_or("?")
    ));
    out.push_str(&format!(
        "  {:<16} {:>8} {:>7} {:>10} {:>9}  http\n",
        "node", "seen", "drains", "ingest/s", "buffered"
    ));
    for n in cluster["nodes"].as_array().into_iter().flatten() {
        let seen = (now - n["updated_ns"].as_i64().unwrap_or(now)).max(0) / 1_000_000;
        out.push_str(&format!(
            "  {:<16} {:>6}ms {:>7} {:>10.0} {:>9}  {}\n",
            n["node_id"].as_str().unwrap_or("?"),
            seen,
            n["drains_owned"].as_u64().unwrap_or(0),
            n["ingest_per_second"].as_f64().unwrap_or(0.0),
            n["buffer"]["buffered"].as_u64().unwrap_or(0),
            n["http"].as_str().unwrap_or(""),
        ));
    }
    match cluster["stream"].as_object() {
        Some(s) => {
            let peers: Vec<String> = s
                .get("peers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or("?");
                    match (p["current"].as_bool(), p["offline"].as_bool()) {
                        (_, Some(true)) => format!("{name} (offline)"),
                        (Some(false), _) => format!("{name} (behind)"),
                        _ => name.to_owned(),
                    }
                })
                .collect();
            out.push_str(&format!(
                "\nstream {}: {} messages, {} bytes, sequences {}..{}, replicas {}, leader {}{}\n",
                s.get("name").and_then(Value::as_str).unwrap_or("?"),
                s.get("messages").and_then(Value::as_u64).unwrap_or(0),
                s.get("bytes").and_then(Value::as_u64).unwrap_or(0),
                s.get("first_sequence").and_then(Value::as_u64).unwrap_or(0),
                s.get("last_sequence").and_then(Value::as_u64).unwrap_or(0),
                s.get("replicas").and_then(Value::as_u64).unwrap_or(0),
                s.get("leader").and_then(Value::as_str).unwrap_or("none"),
                if peers.is_empty() {
                    String::new()
                } else {
                    format!(", followers {}", peers.join(", "))
                }
            ));
        }
        None => out.push_str(&format!(
            "\nstream: unavailable ({})\n",
            cluster["stream_error"].as_str().unwrap_or("no answer")
        )),
    }
    out.push_str("\ndrains:\n");
    let list = drains["drains"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        out.push_str("  (none)");
    }
    for d in &list {
        let status = &d["status"];
        out.push_str(&format!(
            "  {:<20} owner {:<12} {:<9} behind {}\n",
            d["name"].as_str().unwrap_or("?"),
            status["owner"].as_str().unwrap_or("none"),
            status["state"].as_str().unwrap_or("?"),
            status["behind"]
                .as_u64()
                .map_or_else(|| "?".to_owned(), |b| b.to_string()),
        ));
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nodes_stream_and_drains() {
        let cluster = serde_json::json!({
            "node_id": "a", "degraded": false,
            "nodes": [{"node_id": "a", "updated_ns": 0, "drains_owned": 2, "ingest_per_second": 1500.4,
                        "buffer": {"buffered": 0}, "http": "127.0.0.1:8000"}],
            "stream": {"name": "SLUICE_LOG", "messages": 10, "bytes": 900, "first_sequence": 1,
                        "last_sequence": 10, "replicas": 3, "leader": "n1",
                        "peers": [{"name": "n2", "current": true, "offline": false},
                                  {"name": "n3", "current": false, "offline": true}]}
        });
        let drains = serde_json::json!({"drains": [{"name": "d1", "status": {"owner": "a", "state": "RUNNING", "behind": 0}}]});
        let text = render(&cluster, &drains, 5_000_000);
        assert!(
            text.starts_with("cluster: ok (as node a sees it)"),
            "{text}"
        );
        assert!(
            text.contains(
                "  a                     5ms       2       1500         0  127.0.0.1:8000"
            ),
            "{text}"
        );
        assert!(
            text.contains("replicas 3, leader n1, followers n2, n3 (offline)"),
            "{text}"
        );
        assert!(
            text.contains("  d1                   owner a            RUNNING   behind 0"),
            "{text}"
        );
    }
}
