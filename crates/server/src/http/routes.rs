//! logspout's routes API over sluice's drains: `POST /routes`,
//! `GET /routes`, `GET /routes/ID`, `DELETE /routes/ID`.
//!
//! A route is a drain whose name is its id. logspout's JSON shape is kept:
//! `adapter` + `address` make the drain URL `ADAPTER://ADDRESS`, except
//! that logspout's `syslog` adapter is UDP (`syslog+udp://`); drain URLs
//! take logspout's schemes (`syslog+tcp`, `syslog+tls`, `raw`, `raw+udp`,
//! `raw+tcp`) and sluice's alike, so the route shows the adapter as given.
//! `filter_name` is a glob over app names,
//! `filter_id` a source id, `filter_sources` the streams (`stdout`,
//! `stderr`), `options.append_tag` and `options.structured_data` go into
//! the syslog messages.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drains::manager::{DrainError, DrainInfo};
use drains::DrainSpec;
use serde::{Deserialize, Serialize};

use super::drains::json_body;
use super::error::ApiError;
use super::AppState;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Route {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default)]
    pub adapter: String,
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_sources: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// sluice's addition: the drain's status.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub status: Option<drains::status::StatusView>,
}

/// The drain URL scheme of a logspout adapter: the adapter itself (drain
/// URLs take logspout's schemes), but `syslog` is UDP in logspout.
fn scheme_for(adapter: &str) -> &str {
    match adapter {
        "syslog" => "syslog+udp",
        other => other,
    }
}

/// The adapter shown for a drain URL's scheme: sluice's own names as
/// logspout's; logspout's as they are.
fn adapter_for(scheme: &str) -> &str {
    match scheme {
        "syslog+udp" => "syslog",
        "syslog" => "syslog+tcp",
        "syslog-tls" => "syslog+tls",
        "udp" => "raw",
        "tcp" => "raw+tcp",
        other => other,
    }
}

impl Route {
    fn into_spec(self, id: String) -> Result<DrainSpec, ApiError> {
        if self.adapter.is_empty() || self.address.is_empty() {
            return Err(ApiError::bad_request(
                "a route needs an adapter and an address",
            ));
        }
        for key in self.options.keys() {
            if key != "append_tag" && key != "structured_data" {
                return Err(ApiError::bad_request(format!(
                    "unsupported route option {key:?}; sluice supports append_tag and structured_data"
                )));
            }
        }
        Ok(DrainSpec {
            name: id,
            url: format!("{}://{}", scheme_for(&self.adapter), self.address),
            source_ids: if self.filter_id.is_empty() {
                Vec::new()
            } else {
                vec![self.filter_id]
            },
            app_glob: (!self.filter_name.is_empty()).then_some(self.filter_name),
            streams: self.filter_sources,
            append_tag: self.options.get("append_tag").cloned(),
            structured_data: self.options.get("structured_data").cloned(),
            ..Default::default()
        })
    }

    fn from_info(info: DrainInfo) -> Self {
        let spec = info.spec;
        let (scheme, rest) = spec
            .url
            .split_once("://")
            .unwrap_or(("", spec.url.as_str()));
        let mut options = BTreeMap::new();
        if let Some(t) = spec.append_tag {
            options.insert("append_tag".to_owned(), t);
        }
        if let Some(sd) = spec.structured_data {
            options.insert("structured_data".to_owned(), sd);
        }
        Route {
            id: spec.name,
            adapter: adapter_for(scheme).to_owned(),
            address: rest.to_owned(),
            filter_name: spec.app_glob.unwrap_or_default(),
            filter_id: spec.source_ids.into_iter().next().unwrap_or_default(),
            filter_sources: spec.streams,
            options,
            status: Some(info.status),
        }
    }
}

/// logspout's ids: 12 hex digits.
fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

pub async fn add(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let route: Route = json_body(&body)?;
    let id = if route.id.is_empty() {
        new_id()
    } else {
        route.id.clone()
    };
    let info = super::drains::add_blocking(&state, route.into_spec(id)?).await?;
    Ok((StatusCode::CREATED, Json(Route::from_info(info))).into_response())
}

pub async fn list(State(state): State<AppState>) -> impl IntoResponse {
    let routes: Vec<Route> = state
        .drains
        .list()
        .into_iter()
        .map(Route::from_info)
        .collect();
    Json(routes)
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let info = state.drains.get(&id).ok_or(DrainError::NotFound(id))?;
    Ok(Json(Route::from_info(info)).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::drains::delete_blocking(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
