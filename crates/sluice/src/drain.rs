//! `sluice drain …` and `sluice format …`: manage drains and saved formats
//! through the server's `/v1/drains` and `/v1/formats` API.
//!
//! - `drain add [NAME] URL`: without a name the server makes one
//!   (`d.<8 hex>`, as Logplex does), printed in `drain d.1a2b3c4d added`;
//! - `drain test NAME`: sends a test message through the drain and prints
//!   what the receiver said; exit 1 when it failed;
//! - `drain restart NAME`: retries a drain now, FATAL ones too (when the
//!   cause, such as a missing directory, may have gone);
//! - `format delete NAME`.
//!
//! Every request with a body sends JSON (`Content-Type: application/json`,
//! the only type the server accepts on `/v1`).
//!
//! What they print goes through [`term::Stdout`]: escaped on a terminal
//! (drain names, URLs and errors are remote text), quiet on a closed pipe.

use anyhow::{bail, Context as _, Result};
use envelope::time::now_ns;
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
    /// Add a drain: [NAME] URL (syslog://, syslog-tls://, syslog+tls://,
    /// syslog+udp://, https://, tcp://, udp://, raw://, file://, redis://);
    /// without NAME the server makes one (d.<8 hex>) and it is printed.
    #[command(override_usage = "sluice drain add [OPTIONS] [NAME] URL")]
    Add {
        /// [NAME] URL
        #[arg(value_name = "NAME_OR_URL", required = true, num_args = 1..=2)]
        args: Vec<String>,
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
    /// Send a test message through a drain and show what the receiver
    /// said (exit 1 if it failed).
    Test { name: String },
    /// Restart a drain now: reconnect, reset its retry schedule, and retry a
    /// FATAL one.
    Restart { name: String },
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
    /// Delete a saved format.
    Delete { name: String },
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
            args,
            apps,
            prefixes,
            format,
        } => {
            let (name, url) = name_and_url(args)?;
            let mut body = serde_json::json!({
                "url": url, "apps": apps, "prefixes": prefixes, "format": format,
            });
            if let Some(name) = &name {
                body["name"] = Value::String(name.clone());
            }
            let resp = client
                .post(endpoint(&base, &["v1", "drains"]))
                .json(&body)
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            let answer = answer(resp, token).await?;
            let name = answer["name"]
                .as_str()
                .map(str::to_owned)
                .or(name)
                .unwrap_or_else(|| "?".to_owned());
            out.line(&format!("drain {name} added"))?;
        }
        DrainCommand::Test { name } => {
            check_name("drain", &name)?;
            let resp = client
                .post(endpoint(&base, &["v1", "drains", &name, "test"]))
                .json(&serde_json::json!({}))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            let status = resp.status();
            let body = resp.bytes().await.context("reading the server's answer")?;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if status.is_success() && v["ok"] == Value::Bool(true) {
                let detail = v["detail"].as_str().unwrap_or("delivered");
                out.line(&format!("drain {name}: ok: {detail}"))?;
            } else if status == reqwest::StatusCode::BAD_GATEWAY
                || (status.is_success() && v["ok"] == Value::Bool(false))
            {
                let why = v["error"]
                    .as_str()
                    .or(v["detail"].as_str())
                    .map(|w| crate::term::escape_controls(w.trim()).into_owned())
                    .unwrap_or_else(|| error_message(&body));
                bail!("drain {name}: test failed: {why}");
            } else {
                fail(status, &body, token)?;
            }
        }
        DrainCommand::Restart { name } => {
            check_name("drain", &name)?;
            let resp = client
                .post(endpoint(&base, &["v1", "drains", &name, "restart"]))
                .json(&serde_json::json!({}))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            let d = answer(resp, token).await?;
            let state = match d["status"].is_object() {
                true => format!(": {}", status_line(&d["status"], now_ns())),
                false => String::new(),
            };
            out.line(&format!("drain {name} restarted{state}"))?;
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
            check_name("drain", &name)?;
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
            check_name("format", &name)?;
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
        FormatCommand::Delete { name } => {
            check_name("format", &name)?;
            let resp = client
                .delete(endpoint(&base, &["v1", "formats", &name]))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {base}"))?;
            answer(resp, token).await?;
            out.line(&format!("format {name} deleted"))?;
        }
    }
    Ok(0)
}

/// `drain add`'s positionals: `URL` or `NAME URL`.
fn name_and_url(mut args: Vec<String>) -> Result<(Option<String>, String)> {
    let url = args.pop().context("a drain URL is required")?;
    let name = args.pop();
    if !url.contains("://") {
        match &name {
            None => bail!("{url:?} is not a drain URL (scheme://host:port…); usage: sluice drain add [NAME] URL"),
            Some(_) => bail!("{url:?} is not a drain URL (scheme://host:port…)"),
        }
    }
    if let Some(name) = &name {
        check_name("drain", name)?;
    }
    Ok((name, url))
}

/// Names become request path segments: refused here when the server
/// would refuse them (and `.` or `..`, which would be folded away).
fn check_name(what: &str, name: &str) -> Result<()> {
    if !drains::spec::valid_name(name) {
        bail!(
            "invalid {what} name {name:?}: use {}",
            drains::spec::NAME_RULE
        );
    }
    Ok(())
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
        fail(status, &bytes, token)?;
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The error for a failed answer: the server's message, the status, and
/// what to do about the token on a 401/403.
fn fail(status: reqwest::StatusCode, body: &[u8], token: bool) -> Result<()> {
    let msg = error_message(body);
    match auth_hint(status, token) {
        Some(hint) => bail!("{msg} ({status}; {hint})"),
        None => bail!("{msg} ({status})"),
    }
}

/// `RUNNING[53]`, `RETRYING[75] <last error>`, as Logyard shows them,
/// then the counters and where the drain stands in the log: `behind N`
/// (log entries it has yet to examine) and how old the oldest message
/// it has read but not delivered is.
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
    line.push_str(&counts);
    if let Some(owner) = status["owner"].as_str() {
        line.push_str(&format!("  owner {owner}"));
    }
    if let Some(behind) = status["behind"].as_u64() {
        line.push_str(&format!("  behind {behind}"));
        if let Some(oldest) = status["oldest_undelivered_ns"].as_i64() {
            let secs = now.saturating_sub(oldest).max(0) / 1_000_000_000;
            line.push_str(&format!(", oldest undelivered {} old", age(secs)));
        }
    }
    line
}

/// `45s`, `3m05s`, `2h01m`.
fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        drain: DrainArgs,
    }

    #[test]
    fn add_takes_an_optional_name() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            name_and_url(args(&["syslog://h:514"])).unwrap(),
            (None, "syslog://h:514".to_owned())
        );
        assert_eq!(
            name_and_url(args(&["pt", "syslog://h:514"])).unwrap(),
            (Some("pt".to_owned()), "syslog://h:514".to_owned())
        );
        assert!(name_and_url(args(&["justaname"]))
            .unwrap_err()
            .to_string()
            .contains("usage"));
        assert!(name_and_url(args(&["..", "tcp://h:1"])).is_err());
        let parsed = Cli::try_parse_from(["drain", "add", "tcp://h:1", "--app", "web"]);
        assert!(parsed.is_ok());
        assert!(Cli::try_parse_from(["drain", "add"]).is_err());
        assert!(Cli::try_parse_from(["drain", "add", "a", "tcp://h:1", "extra"]).is_err());
        assert!(Cli::try_parse_from(["drain", "test", "pt"]).is_ok());
        assert!(Cli::try_parse_from(["drain", "restart", "pt"]).is_ok());
    }

    #[test]
    fn status_lines() {
        let v = serde_json::json!({"state":"RETRYING","since":0,"last_error":"connect: refused","sent":5,"dropped":2,"retries":3});
        assert_eq!(
            status_line(&v, 75_000_000_000),
            "RETRYING[75] connect: refused  sent=5 dropped=2 retries=3"
        );
        let v = serde_json::json!({"state":"RUNNING","since":0,"last_error":"old","sent":1,"dropped":0,"retries":0});
        assert!(status_line(&v, 53_000_000_000).starts_with("RUNNING[53]  sent=1"));
        let v = serde_json::json!({"state":"RETRYING","since":0,"last_error":"refused","sent":1,"dropped":0,"retries":2,"behind":50000,"oldest_undelivered_ns":0});
        assert_eq!(
            status_line(&v, 185_000_000_000),
            "RETRYING[185] refused  sent=1 dropped=0 retries=2  behind 50000, oldest undelivered 3m05s old"
        );
        let v = serde_json::json!({"state":"RUNNING","since":0,"sent":1,"dropped":0,"retries":0,"behind":0});
        assert!(status_line(&v, 0).ends_with("retries=0  behind 0"));
        assert_eq!(age(7_260), "2h01m");
    }
}
