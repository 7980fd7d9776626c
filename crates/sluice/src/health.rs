//! `sluice health`: ingress, egress and loss over the last minute and hour,
//! from `GET /v1/health`, with Loggregator's alert levels (loss ≥ 0.5 %
//! warn, ≥ 1 % critical). Exit 0 when ok, 1 on warn, 2 when critical, so a
//! script or a monitor can act on it.

use anyhow::{Context as _, Result};

use crate::client::{self, endpoint, ServerArg};

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  sluice health\n  window       ingress   egress  dropped   loss  level\n  last minute    60000    59800        0  0.00%  ok\n  last hour     900000   899000       12  0.00%  ok\n  subscribers: 3; overall: ok\n\nExit status: 0 ok, 1 warn, 2 critical."
)]
pub struct HealthArgs {
    /// Print the server's JSON as it is
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArg,
}

pub fn main(args: HealthArgs) -> Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(health(args))
}

async fn health(args: HealthArgs) -> Result<u8> {
    let base = args.server.url()?;
    let client = client::http_client(args.server.token.as_deref())?;
    let url = endpoint(&base, &["v1", "health"]);
    let has_token = args.server.token.is_some();
    let report = client::get_json(&client, &base, url, has_token, "health").await?;
    let mut stdout = crate::term::Stdout::new();
    if args.json {
        stdout.json_line(&report.to_string())?;
    } else {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<12} {:>9} {:>9} {:>8} {:>7}  level\n",
            "window", "ingress", "egress", "dropped", "loss"
        ));
        for (label, key) in [("last minute", "last_minute"), ("last hour", "last_hour")] {
            let w = &report[key];
            out.push_str(&format!(
                "{:<12} {:>9} {:>9} {:>8} {:>6.2}%  {}\n",
                label,
                w["ingress"].as_u64().unwrap_or(0),
                w["egress"].as_u64().unwrap_or(0),
                w["dropped"].as_u64().unwrap_or(0),
                w["loss_percent"].as_f64().unwrap_or(0.0),
                w["level"].as_str().unwrap_or("?"),
            ));
        }
        out.push_str(&format!(
            "subscribers: {}; overall: {}",
            report["subscribers"].as_u64().unwrap_or(0),
            report["level"].as_str().unwrap_or("?")
        ));
        stdout.line(&out)?;
    }
    Ok(match report["level"].as_str() {
        Some("critical") => 2,
        Some("warn") => 1,
        _ => 0,
    })
}
