//! The HTTP API (axum).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /logs`, `/logs/{filter:…,id:…,name:…,app:…}` | live streams, logspout-style ([`stream`]) |
//! | `POST /logs` | ingest: logplex-1, NDJSON, text ([`ingest`]) |
//! | `GET /api/v1/read/{source_id}`, `GET /api/v1/meta` | Log Cache reads ([`read`]) |
//! | `GET /health`, `GET /metrics` | liveness and Prometheus metrics ([`ops`]) |
//! | `/v1/drains[/NAME]`, `/v1/formats[/NAME]` | drains and saved formats ([`drains`]) |
//! | `/routes[/ID]` | logspout's routes API over the same drains ([`routes`]) |
//! | `GET /v1/apps` | sources with lines held and the last hour's activity ([`apps`]) |
//! | `GET /`, `/console/*` | the web console ([`console`]) |
//!
//! Errors are JSON bodies `{"error": "…"}` with a fitting status.
//!
//! Every request passes, outermost first: [`guard`] (Host on every route;
//! Origin and JSON-only on state-changing ones), [`auth`] (bearer tokens,
//! all but `/health`), [`body`] (size, time and memory bounds on request
//! bodies). [`listener`] bounds connections and header time.

pub mod apps;
pub mod auth;
pub mod body;
pub mod console;
pub mod drains;
pub mod error;
pub mod guard;
pub mod ingest;
pub mod listener;
pub mod ops;
pub mod read;
pub mod render;
pub mod rlp;
pub mod routes;
pub mod scope;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use axum::routing::get;
use axum::Router;
use router::Bus;
use sluice_log::Log;
use sources::IngestContext;
use tokio::sync::Semaphore;

use crate::config::Config;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub bus: Bus,
    pub log: Arc<dyn Log>,
    pub ingest: IngestContext,
    pub heartbeat: Duration,
    pub streams: Arc<Semaphore>,
    pub drains: ::drains::DrainManager,
    /// The firehose (`/v2/read`), shared with gRPC egress.
    pub egress: grpc::EgressService,
    /// How long a `/v2/read` stream lives before `event: closing`.
    pub stream_timeout: Duration,
    /// Totals over the last hour, for `/v1/health`.
    pub health: Arc<crate::self_metrics::HealthHistory>,
    /// Log Cache reads running (`read::MAX_CONCURRENT_READS`; more: 429).
    pub reads: Arc<Semaphore>,
    /// When the server started (`/api/v1/info`).
    pub started: std::time::Instant,
    /// What `GET /v1/agent` reports, set by `sluice agent` (404 without).
    pub agent_status: Arc<std::sync::OnceLock<AgentStatus>>,
    /// This node's part of the cluster (`/v1/cluster`), when it is one
    /// (set after `new`).
    pub node: Option<crate::cluster::Node>,
    tokens: Arc<Vec<String>>,
    /// App tokens and the sources each may see.
    app_tokens: Arc<Vec<(String, Arc<Vec<String>>)>>,
    hosts: Arc<guard::HostPolicy>,
    bodies: body::BodyBudget,
}

impl AppState {
    pub fn new(
        config: &Config,
        bus: Bus,
        log: Arc<dyn Log>,
        ingest: IngestContext,
        drains: ::drains::DrainManager,
        egress: grpc::EgressService,
        health: Arc<crate::self_metrics::HealthHistory>,
    ) -> Self {
        AppState {
            bus,
            log,
            ingest,
            heartbeat: Duration::from_secs(config.http.heartbeat_secs.max(1)),
            streams: Arc::new(Semaphore::new(config.http.max_streams.max(1))),
            drains,
            egress,
            stream_timeout: Duration::from_secs(config.http.stream_timeout_secs.max(1)),
            health,
            reads: Arc::new(Semaphore::new(read::MAX_CONCURRENT_READS)),
            started: std::time::Instant::now(),
            agent_status: Arc::default(),
            node: None,
            tokens: Arc::new(config.auth.tokens.clone()),
            app_tokens: Arc::new(
                config
                    .auth
                    .app_tokens
                    .iter()
                    .map(|a| (a.token.clone(), Arc::new(a.sources.clone())))
                    .collect(),
            ),
            hosts: Arc::new(guard::HostPolicy::new(
                config.http.listen,
                &config.http.allowed_hosts,
            )),
            bodies: body::BodyBudget::new(
                config.ingest.max_inflight_bytes,
                config.ingest.max_body.max(1),
                Duration::from_secs(config.http.body_timeout_secs.max(1)),
            ),
        }
    }
}

/// The collectors' report for `GET /v1/agent` (a JSON value): the server
/// does not know what the agent collects, only how to serve its report.
pub type AgentStatus = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/logs", get(stream::all).post(ingest::post_logs))
        .route("/logs/{spec}", get(stream::filtered))
        .route("/api/v1/read/{*source_id}", get(read::read))
        .route("/api/v1/info", get(read::info))
        .route("/api/v1/meta", get(read::meta))
        .route("/v2/read", get(rlp::read))
        .route("/metrics", get(ops::metrics))
        .route("/v1/drains", get(drains::list).post(drains::add))
        .route(
            "/v1/drains/{name}",
            get(drains::get).put(drains::put).delete(drains::delete),
        )
        .route(
            "/v1/drains/{name}/restart",
            axum::routing::post(drains::restart),
        )
        .route("/v1/drains/{name}/test", axum::routing::post(drains::test))
        .route("/v1/formats", get(drains::formats))
        .route(
            "/v1/formats/{name}",
            axum::routing::put(drains::set_format).delete(drains::delete_format),
        )
        .route("/routes", get(routes::list).post(routes::add))
        .route("/routes/{id}", get(routes::get).delete(routes::delete))
        .route("/v1/health", get(ops::health_report))
        .route("/v1/agent", get(ops::agent_report))
        .route("/v1/cluster", get(ops::cluster_report))
        .route("/v1/apps", get(apps::list))
        .layer(middleware::from_fn_with_state(state.clone(), body::bounded))
        .layer(middleware::from_fn(scope::enforce))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .route("/health", get(ops::health))
        // The console loads without a token, then asks for one.
        .route("/", get(console::index))
        .route("/console/{name}", get(console::asset))
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard::check))
        .layer(middleware::from_fn(error::json_errors))
        .with_state(state)
}
