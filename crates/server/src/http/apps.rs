//! `GET /v1/apps`: every source with what the log holds of it and what it
//! sent in the last hour, for the console's apps list (and curl):
//!
//! ```json
//! {"apps":[{"source_id":"guid-1","app_name":"web","lines":"1200",
//!   "newest":"1795785298000000000","lines_last_hour":900,
//!   "errors_last_hour":3,"per_minute":[0,…,12]}]}
//! ```
//!
//! `lines` is what the log holds (Log Cache's meta `count`); the hourly
//! figures come from [`sources::activity`], which restarts empty with the
//! server (a source known only to the log shows zeros and its id as name).
//! An app token sees its own sources only.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;

use super::error::ApiError;
use super::scope::Access;
use super::AppState;

#[derive(Serialize)]
struct AppRow {
    source_id: String,
    app_name: String,
    /// Entries the log holds (an int64, so a string).
    lines: String,
    newest: String,
    lines_last_hour: u64,
    errors_last_hour: u64,
    per_minute: Vec<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let now = envelope::time::now_ns();
    let held = state
        .log
        .meta(None, super::read::MAX_META)
        .await
        .map_err(ApiError::unavailable)?;
    let mut rows: BTreeMap<String, AppRow> = held
        .into_iter()
        .map(|m| {
            let row = AppRow {
                source_id: m.source_id.clone(),
                app_name: m.source_id.clone(),
                lines: m.count.to_string(),
                newest: m.newest_timestamp.to_string(),
                lines_last_hour: 0,
                errors_last_hour: 0,
                per_minute: vec![0; sources::activity::MINUTES],
            };
            (m.source_id, row)
        })
        .collect();
    for a in state.ingest.activity.report(now) {
        let row = rows.entry(a.source_id.clone()).or_insert_with(|| AppRow {
            source_id: a.source_id.clone(),
            app_name: String::new(),
            lines: "0".to_owned(),
            newest: "0".to_owned(),
            lines_last_hour: 0,
            errors_last_hour: 0,
            per_minute: Vec::new(),
        });
        row.app_name = a.app_name;
        row.lines_last_hour = a.lines_last_hour;
        row.errors_last_hour = a.errors_last_hour;
        row.per_minute = a.per_minute;
        if row.newest == "0" {
            row.newest = a.newest;
        }
    }
    let apps: Vec<AppRow> = rows
        .into_values()
        .filter(|r| match access.as_ref() {
            None => true,
            Some(Extension(a)) => a.may_read_source(&r.source_id) || a.may_see_app(&r.app_name),
        })
        .collect();
    Ok(Json(serde_json::json!({ "apps": apps })))
}
