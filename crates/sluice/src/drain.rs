//! `sluice drain …` and `sluice format …`: manage drains and saved formats
//! through the server's `/v1/drains` and `/v1/formats` API.
//!
//! What they print goes through [`term::Stdout`]: escaped on a terminal
//! (drain names, URLs and errors are remote text), quiet on a closed pipe.

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::client::{auth_hint, endpoint, error_message, http_client, ServerArg};
use crate::term::Stdout;

#[derive(clap::Args)]
pub struct DrainArgs {
    #[command(subcommand)]
    command: DrainCommand,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(clap::Subcommand)]
enum DrainCommand {
    /// Add a drain: NAME URL (syslog://, syslog-tls://, syslog+udp://, https://, tcp://, udp://, file://, redis://).
    Add {
        name: String,
        url: String,
        /// Only this app's logs (name or source id; repeatable).
        #[arg(long = "app", value_name = "APP")]
        apps: Vec<String>,
        /// Only keys with this prefix, e.g. apptail, systail, event (repeatable).
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<String>,
        /// Format: verbatim, json, apptail, systail, event, a saved name, or a {{.field}} template.
        #[arg(long, short = 'f', value_name = "FORMAT")]
        format: Option<String>,
    },
    /// List drains.
    List {
        /// Print the JSON the server answered.
        #[arg(long)]
        json: bool,
    },
    /// Delete a drain.
    Delete { name: String },
    /// Show each drain's state: NAME  RUNNING[secs] / RETRYING[secs] <last error> / FATAL <why>.
    Status { name: Option<String> },
}

#[derive(clap::Args)]
pub struct FormatArgs {
    #[command(subcommand)]
    command: FormatCommand,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(clap::Subcommand)]
enum FormatCommand {
    /// Save a named format (a {{.field}} template) for drains to use.
    Set { name: String, template: String },
    /// List saved formats.
    List,
}

pub fn drain_main(args: DrainArgs) -> Result<u8> {
    block_on(drain(args))
}

pub fn format_main(args: FormatArgs) -> Result<u8> {
    block_on(format(args))
}

fn block_on<F: std::future::Future<Output = Result<u8>>>(f: F) -> Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(f)
}

async fn drain(args: DrainArgs) -> Result<u8> {
    let base = args.server.url()?;
    let client = http_client(args.server.token.as_deref())?;
    let token = args.server.token.is_some();
    let mut out = Stdout::new();
    match args.command {
        DrainCommand::Add {
            name,
            url,
            apps,
            prefixes,
            format,
        } => {
            let body = serde_json::json!({
                "name": name, "url": url, "apps": apps, "prefixes": prefixes, "format": format,
            });
            let resp = client
                .post(endpoint(&base, &["v1", "drains"]))
                .json(&body)
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            answer(resp, token).await?;
            out.line(&format!("drain {name} added"))?;
        }
        DrainCommand::List { json } => {
            let drains = fetch_drains(&client, &base, token).await?;
            if json {
                out.json_line(&serde_json::to_string_pretty(&drains)?)?;
            } else {
                for d in drains.as_array().into_iter().flatten() {
                    let apps = d["apps"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default();
                    out.line(&format!(
                        "{:<20} {}{}",
                        d["name"].as_str().unwrap_or("?"),
                        d["url"].as_str().unwrap_or("?"),
                        if apps.is_empty() {
                            String::new()
                        } else {
                            format!("  apps={apps}")
                        }
                    ))?;
                }
            }
        }
        DrainCommand::Delete { name } => {
            let resp = client
                .delete(endpoint(&base, &["v1", "drains", &name]))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            answer(resp, token).await?;
            out.line(&format!("drain {name} deleted"))?;
        }
        DrainCommand::Status { name } => {
            let drains = fetch_drains(&client, &base, token).await?;
            let now = now_ns();
            let mut shown = 0;
            for d in drains.as_array().into_iter().flatten() {
                let dname = d["name"].as_str().unwrap_or("?");
                if name.as_deref().is_some_and(|n| n != dname) {
                    continue;
                }
                shown += 1;
                out.line(&format!("{dname:<20} {}", status_line(&d["status"], now)))?;
            }
            if shown == 0 {
                if let Some(n) = name {
                    bail!("no drain named {n:?}");
                }
            }
        }
    }
    Ok(0)
}

async fn format(args: FormatArgs) -> Result<u8> {
    let base = args.server.url()?;
    let client = http_client(args.server.token.as_deref())?;
    let token = args.server.token.is_some();
    let mut out = Stdout::new();
    match args.command {
        FormatCommand::Set { name, template } => {
            // `.` and `..` would be folded away in the request path.
            if !drains::spec::valid_name(&name) {
                anyhow::bail!(
                    "invalid format name {name:?}: use {}",
                    drains::spec::NAME_RULE
                );
            }
            let resp = client
                .put(endpoint(&base, &["v1", "formats", &name]))
                .json(&serde_json::json!({ "template": template }))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            answer(resp, token).await?;
            out.line(&format!("format {name} saved"))?;
        }
        FormatCommand::List => {
            let resp = client
                .get(endpoint(&base, &["v1", "formats"]))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            let v = answer(resp, token).await?;
            if let Some(map) = v["formats"].as_object() {
                for (k, t) in map {
                    out.line(&format!("{k:<20} {}", t.as_str().unwrap_or("")))?;
                }
            }
        }
    }
    Ok(0)
}

async fn fetch_drains(client: &reqwest::Client, base: &reqwest::Url, token: bool) -> Result<Value> {
    let resp = client
        .get(endpoint(base, &["v1", "drains"]))
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {base}"))?;
    Ok(answer(resp, token).await?["drains"].take())
}

/// The JSON body of a successful answer, or the server's error message
/// (with what to do about the token on a 401/403; `token`: one was sent).
async fn answer(resp: reqwest::Response, token: bool) -> Result<Value> {
    let status = resp.status();
    let bytes = resp.bytes().await.context("reading the server's answer")?;
    if !status.is_success() {
        let msg = error_message(&bytes);
        match auth_hint(status, token) {
            Some(hint) => bail!("{msg} ({status}; {hint})"),
            None => bail!("{msg} ({status})"),
        }
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `RUNNING[53]`, `RETRYING[75] <last error>`, as Logyard shows them.
fn status_line(status: &Value, now: i64) -> String {
    let state = status["state"].as_str().unwrap_or("?");
    let since = status["since"].as_i64().unwrap_or(now);
    let secs = (now - since).max(0) / 1_000_000_000;
    let mut line = format!("{state}[{secs}]");
    if state != "RUNNING" {
        if let Some(e) = status["last_error"].as_str() {
            line.push(' ');
            line.push_str(e);
        }
    }
    let counts = format!(
        "  sent={} dropped={} retries={}",
        status["sent"].as_u64().unwrap_or(0),
        status["dropped"].as_u64().unwrap_or(0),
        status["retries"].as_u64().unwrap_or(0)
    );
    line + &counts
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let v = serde_json::json!({"state":"RETRYING","since":0,"last_error":"connect: refused","sent":5,"dropped":2,"retries":3});
        assert_eq!(
            status_line(&v, 75_000_000_000),
            "RETRYING[75] connect: refused  sent=5 dropped=2 retries=3"
        );
        let v = serde_json::json!({"state":"RUNNING","since":0,"last_error":"old","sent":1,"dropped":0,"retries":0});
        assert!(status_line(&v, 53_000_000_000).starts_with("RUNNING[53]  sent=1"));
    }
}
