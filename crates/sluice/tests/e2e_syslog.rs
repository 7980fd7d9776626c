//! End to end: the `sluice server` binary fed by real syslog senders —
//! util-linux `logger` (TCP octet-counted, TCP LF, UDP, RFC 3164) and
//! rsyslog forwarding with `omfwd` (octet-counted RFC 5424).

mod support;

use std::process::Command;
use std::time::Duration;

use support::{require, ServerProcess, TempDir};

fn logger(args: &[&str]) {
    let status = Command::new(require("logger"))
        .args(args)
        .status()
        .expect("run logger");
    assert!(status.success(), "logger {args:?} failed");
}

#[test]
fn logger_over_every_transport() {
    let server = ServerProcess::start(&[]);
    let port = server.syslog_tcp.port().to_string();
    let udp_port = server.syslog_udp.port().to_string();
    let common = ["-n", "127.0.0.1", "-t", "web"];
    logger(
        &[
            &common[..],
            &[
                "-P",
                &port,
                "--tcp",
                "--octet-count",
                "--rfc5424",
                "tcp octet-counted",
            ],
        ]
        .concat(),
    );
    logger(&[&common[..], &["-P", &port, "--tcp", "--rfc5424", "tcp lf"]].concat());
    logger(
        &[
            &common[..],
            &["-P", &udp_port, "--udp", "--rfc5424", "udp 5424"],
        ]
        .concat(),
    );
    logger(
        &[
            &common[..],
            &["-P", &udp_port, "--udp", "--rfc3164", "udp 3164"],
        ]
        .concat(),
    );
    logger(
        &[
            &common[..],
            &[
                "-P",
                &port,
                "--tcp",
                "--rfc3164",
                "-p",
                "user.err",
                "tcp 3164 error",
            ],
        ]
        .concat(),
    );
    let mut got = server.wait_payloads("web", 5);
    got.sort();
    assert_eq!(
        got,
        vec![
            "tcp 3164 error",
            "tcp lf",
            "tcp octet-counted",
            "udp 3164",
            "udp 5424"
        ]
    );
    // Severity err (3) became ERR; the others OUT.
    let body = server.get("/api/v1/read/web?limit=10");
    let batch = envelope::json::batch_from_json(body.as_bytes())
        .unwrap()
        .batch;
    for e in &batch {
        let text = String::from_utf8_lossy(&e.as_log().unwrap().payload).into_owned();
        let expected = if text.contains("error") { "ERR" } else { "OUT" };
        assert_eq!(e.log_type().unwrap().as_str(), expected, "{text}");
        assert!(e.tag("host").is_some());
    }
    assert_eq!(
        server.metric("sluice_ingress_envelopes_total{protocol=\"syslog_tcp\"}"),
        3
    );
    assert_eq!(
        server.metric("sluice_ingress_envelopes_total{protocol=\"syslog_udp\"}"),
        2
    );
}

#[test]
fn rsyslog_forwards_octet_counted_rfc5424() {
    let rsyslogd = require("rsyslogd");
    let server = ServerProcess::start(&[]);
    let dir = TempDir::new("rsyslog");
    // rsyslog listens on UDP and forwards everything to sluice over TCP.
    let input = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let input_port = input.local_addr().unwrap().port();
    drop(input);
    let conf = dir.0.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{dir}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{input_port}")
action(type="omfwd" target="127.0.0.1" port="{sluice}" protocol="tcp"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
"#,
            dir = dir.0.display(),
            sluice = server.syslog_tcp.port()
        ),
    )
    .unwrap();
    let mut rsyslog = Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.0.join("rsyslog.pid"))
        .spawn()
        .expect("start rsyslogd");
    std::thread::sleep(Duration::from_millis(500));
    let port = input_port.to_string();
    for i in 0..20 {
        let text = format!("via rsyslog {i}");
        logger(&[
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "--udp",
            "--rfc5424",
            "-t",
            "relayed",
            "-p",
            "local0.warning",
            &text,
        ]);
    }
    let got = server.wait_payloads("relayed", 20);
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
    let mut expected: Vec<String> = (0..20).map(|i| format!("via rsyslog {i}")).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    expected.sort();
    assert_eq!(got_sorted, expected);
    assert_eq!(
        server.metric("sluice_drops_total{reason=\"parse_error\"}"),
        0
    );
}
