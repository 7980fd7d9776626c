//! The HTTP accept loop, with the limits `axum::serve` has no knobs for.
//!
//! - at most `[http] max_connections` connections; at the limit the oldest
//!   connection that has not yet sent a complete request is closed to make
//!   room (`sluice_ingress_errors_total{reason="evicted"}`), and when every
//!   connection is serving (live streams, say) new ones wait in the
//!   backlog ([`sources::connections`]);
//! - request headers must arrive within `[http] header_timeout_secs`
//!   (hyper's header read timeout, also for the next request on a kept-alive
//!   connection);
//! - `sluice_connections{protocol="http"}` counts open connections.
//!
//! On shutdown each connection finishes the request under way (hyper's
//! graceful shutdown) and the loop waits for them, bounded by the caller's
//! deadline.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use sources::connections::{Admitted, ConnectionTable};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::{debug, info_span, warn, Instrument};

/// Limits of the HTTP listener.
#[derive(Clone, Debug)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    metrics: std::sync::Arc<metrics::Metrics>,
    shutdown: CancellationToken,
) {
    let table = ConnectionTable::new(limits.max_connections);
    let gauge = metrics.connection_gauge("http");
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        tokio::select! {
            _ = table.wait_for_room() => {}
            _ = shutdown.cancelled() => break,
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    warn!(%err, "http accept failed");
                    metrics.error("accept_failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let (registration, admitted) = table.admit(&shutdown);
        if admitted == Admitted::Evicted {
            debug!("http connection limit reached; closed the oldest connection without a request");
            metrics.error("evicted");
        }
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let gauge = gauge.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(
            async move {
                gauge.inc();
                let slot = std::sync::Arc::clone(&registration.slot);
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    // A complete request arrived: this connection is a
                    // client, not a slowloris; never evict it.
                    slot.protect();
                    let mut app = app.clone();
                    async move {
                        let response = app.call(request.map(Body::new)).await;
                        Ok::<_, Infallible>(match response {
                            Ok(r) => r,
                            Err(never) => match never {},
                        })
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                tokio::pin!(connection);
                let close = registration.slot.close.clone();
                tokio::select! {
                    done = connection.as_mut() => {
                        if let Err(err) = done {
                            debug!(%err, "http connection ended");
                        }
                    }
                    // Evicted (never sent a whole request: nothing to
                    // finish, so the socket just closes), or shut down (the
                    // request under way finishes first).
                    _ = close.cancelled(), if !registration.slot.is_protected() => {}
                    _ = close.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
                    }
                }
                gauge.dec();
                drop(registration);
            }
            .instrument(info_span!("http", %peer)),
        );
    }
    while connections.join_next().await.is_some() {}
}
