//! statsd end to end: lines sent with `nc -u` (netcat-openbsd, installed by
//! scripts/test.sh) to `sluice server --statsd`, read back as gauge
//! envelopes (statsd-injector's mapping: origin = source id, counters as
//! running totals); a bad line is counted and the rest of its datagram kept.

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use envelope::v2::Message;
use support::{require, ServerProcess};

/// Sends one datagram with `nc -u`.
fn nc_udp(addr: std::net::SocketAddr, datagram: &str) {
    let mut child = Command::new(require("nc"))
        .args([
            "-u",
            "-w1",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run nc");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(datagram.as_bytes())
        .expect("write to nc");
    assert!(child.wait().expect("nc exits").success());
}

#[test]
fn statsd_lines_from_nc_become_gauges() {
    let server = ServerProcess::start(&["--statsd", "127.0.0.1:0"]);
    let addr = server
        .statsd
        .expect("the server printed its statsd address");
    nc_udp(
        addr,
        "router.requests:3|c|#zone:z1\nrouter.requests:2|c|@0.5|#zone:z1\n",
    );
    nc_udp(
        addr,
        "router.latency:42|ms\nbad line\nrouter.mem:512|g\nrouter.mem:-12|g\n",
    );

    let read = || -> Vec<(String, String, f64, Option<String>)> {
        let body = server.get("/api/v1/read/router?limit=100");
        let Ok(batch) = envelope::json::batch_from_json(body.as_bytes()) else {
            return Vec::new();
        };
        batch
            .batch
            .iter()
            .filter_map(|e| match &e.message {
                Some(Message::Gauge(g)) => {
                    let (name, v) = g.metrics.iter().next()?;
                    Some((
                        name.clone(),
                        v.unit.clone(),
                        v.value,
                        e.tags.get("zone").cloned(),
                    ))
                }
                _ => None,
            })
            .collect()
    };
    let got = support::eventually(10, || {
        let got = read();
        (got.len() >= 5).then_some(got)
    })
    .unwrap_or_else(|| panic!("5 gauges never arrived: {:?}", read()));
    assert_eq!(
        got,
        [
            ("requests".into(), "counter".into(), 3.0, Some("z1".into())),
            ("requests".into(), "counter".into(), 7.0, Some("z1".into())),
            ("latency".into(), "ms".into(), 42.0, None),
            ("mem".into(), "gauge".into(), 512.0, None),
            ("mem".into(), "gauge".into(), 500.0, None),
        ]
    );
    assert_eq!(
        server.metric("sluice_ingress_errors_total{reason=\"statsd_parse\"}"),
        1
    );
    assert_eq!(
        server.metric("sluice_ingress_envelopes_total{protocol=\"statsd\"}"),
        5
    );
}
