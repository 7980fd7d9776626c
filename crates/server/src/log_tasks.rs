//! The server's side of the log: opening the configured backend at start
//! (reporting what recovery repaired), and the tasks that run beside it —
//! the fan-out that feeds live tails from the log, the fsync timer and the
//! retention timer.

use std::sync::Arc;
use std::time::Duration;

use envelope::Selector;
use metrics::Metrics;
use router::Bus;
use sluice_log::{Cursor, DiskLog, Log, MemoryLog, OpenReport};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, LogBackend};

/// The opened log, and its disk form when it has one (for the fsync timer
/// and the final close).
pub struct OpenedLog {
    pub log: Arc<dyn Log>,
    pub disk: Option<DiskLog>,
    /// This node's part of the cluster, when `[cluster] nats` is set.
    pub node: Option<crate::cluster::Node>,
}

/// How long a cluster node may take at shutdown to publish what it
/// buffered.
const CLUSTER_FLUSH: Duration = Duration::from_secs(3);

/// Opens the configured backend. A damaged disk log is repaired (torn tail
/// cut, damaged segments skipped), counted in `sluice_log_repairs_total`
/// and logged; only a log that cannot be opened at all (another server
/// holds its lock, the directory is unusable) stops the start.
pub async fn open_log(
    config: &Config,
    metrics: &Arc<Metrics>,
    log_shutdown: &CancellationToken,
) -> Result<OpenedLog, sluice_log::ApiError> {
    if let Some(cluster_config) =
        config
            .cluster_config()
            .map_err(|e| sluice_log::ApiError::Remote {
                op: "cluster config",
                detail: e.to_string(),
            })?
    {
        let cluster = cluster::Cluster::connect(cluster_config)
            .await
            .map_err(|e| sluice_log::ApiError::Remote {
                op: "joining the cluster",
                detail: e.to_string(),
            })?;
        let log = cluster::JetStreamLog::start(
            cluster,
            Arc::clone(metrics),
            log_shutdown.clone(),
            CLUSTER_FLUSH,
        )
        .await?;
        return Ok(OpenedLog {
            log: Arc::new(log.clone()),
            disk: None,
            node: Some(crate::cluster::Node::new(log)),
        });
    }
    if config.log.backend == LogBackend::Memory {
        info!("log in memory: history and drain positions end with the process");
        let log = Arc::new(MemoryLog::new(config.memory_log_config()));
        return Ok(OpenedLog {
            log,
            disk: None,
            node: None,
        });
    }
    let disk_config = config.disk_log_config();
    let (disk, report) = tokio::task::spawn_blocking(move || DiskLog::open(disk_config))
        .await
        .map_err(|e| sluice_log::ApiError::Task(e.to_string()))??;
    report_open(&report, metrics);
    Ok(OpenedLog {
        log: Arc::new(disk.clone()),
        disk: Some(disk),
        node: None,
    })
}

fn report_open(report: &OpenReport, metrics: &Metrics) {
    let repairs =
        u64::from(report.tail.is_some()) + (report.damaged.len() + report.gaps.len()) as u64;
    metrics.log_repairs.inc_by(repairs);
    info!(
        segments = report.segments,
        records = report.records,
        bytes = report.bytes,
        next_position = report.next_position,
        from_checkpoint = report.checkpoint_segments,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "log opened"
    );
    if let Some(cut) = &report.tail {
        warn!(
            segment = %cut.path.display(),
            bytes_cut = cut.bytes_cut,
            intact_records_cut = cut.intact_records_cut,
            "torn tail cut (a crash during a write)"
        );
    }
    for damaged in &report.damaged {
        warn!(?damaged, "damaged segment skipped");
    }
    for gap in &report.gaps {
        warn!(?gap, "positions missing from the log");
    }
}

/// Live fan-out: follows the log from its end and offers every new entry
/// to the bus (live tails, later the firehose), until shutdown. Entries
/// come with their positions (`seq`), so a stream can switch from replay
/// to live exactly.
pub async fn fan_out(log: Arc<dyn Log>, bus: Bus, shutdown: CancellationToken) {
    let all = Selector::all();
    let mut cursor = match log.end_cursor().await {
        Ok(c) => c,
        Err(err) => {
            warn!(error = %err, "cannot read the log's end; live tails get nothing");
            return;
        }
    };
    loop {
        let page = tokio::select! {
            page = log.read_from(cursor, &all, 4096) => page,
            _ = shutdown.cancelled() => return,
        };
        match page {
            Ok(page) => {
                let entries: Vec<_> = page.entries.into_iter().map(|e| e.entry).collect();
                bus.publish_entries(&entries);
                cursor = page.next_cursor;
                if page.caught_up && !wait_beyond(log.as_ref(), cursor, &shutdown).await {
                    return;
                }
            }
            Err(err) => {
                warn!(error = %err, "live fan-out cannot read the log; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// Waits until the log grows past `cursor`; false on shutdown or when the
/// log closed.
async fn wait_beyond(log: &dyn Log, cursor: Cursor, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        r = log.wait_beyond(cursor) => r.is_ok(),
        _ = shutdown.cancelled() => false,
    }
}

/// Applies retention (age, disk budget) every `period` until shutdown.
pub async fn retain_every(log: Arc<dyn Log>, period: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match log.retain(envelope::time::now_ns()).await {
            Ok(r) if r.removed > 0 => {
                info!(removed = r.removed, oldest = ?r.oldest_position, "retention removed old entries");
            }
            Ok(_) => {}
            Err(err) => warn!(error = %err, "retention failed; retrying"),
        }
    }
}
