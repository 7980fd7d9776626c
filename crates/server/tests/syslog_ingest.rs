//! Syslog ingest fed raw bytes over TCP and UDP: framing per frame, limits,
//! bad input counted and nothing else lost.

mod common;

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

/// A BSD (RFC 3164) timestamp two days ago: older than the accepted
/// clock skew, so ingest stamps the receive time and arrival order holds
/// whatever time of day the test runs.
fn bsd_two_days_ago() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = envelope::time::now_ns() / 1_000_000_000 - 2 * 86_400;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn octet(msg: &str) -> String {
    format!("{} {}", msg.len(), msg)
}

#[tokio::test]
async fn mixed_framings_on_one_connection() {
    let s = common::start(|_| {}).await;
    let mut tcp = TcpStream::connect(s.syslog).await.unwrap();
    let a = "<14>1 - host web - - - first";
    let stream = format!(
        "{}<14>1 - host web - - - second\n{}<13>{} host web[1]: fourth\r\nplain fifth\n",
        octet(a),
        octet("<11>1 - host web [APP/PROC/WEB/2] - - third"),
        bsd_two_days_ago()
    );
    // Byte by byte: framing must survive arbitrary splits.
    for b in stream.as_bytes() {
        tcp.write_all(&[*b]).await.unwrap();
    }
    tcp.shutdown().await.unwrap();
    s.wait_for_entries(5).await;
    assert_eq!(
        s.payloads("web").await,
        vec!["first", "second", "third", "fourth"]
    );
    assert_eq!(s.payloads("unknown").await, vec!["plain fifth"]);
}

#[tokio::test]
async fn oversized_frames_are_truncated_and_counted() {
    let s = common::start(|c| c.ingest.max_message = 100).await;
    let mut tcp = TcpStream::connect(s.syslog).await.unwrap();
    let long = "x".repeat(10_000);
    let lf = format!("<14>1 - h web - - - {long}\n");
    let counted = octet(&format!("<14>1 - h web - - - {long}"));
    tcp.write_all(lf.as_bytes()).await.unwrap();
    tcp.write_all(counted.as_bytes()).await.unwrap();
    tcp.write_all(b"<14>1 - h web - - - after\n").await.unwrap();
    tcp.shutdown().await.unwrap();
    s.wait_for_entries(3).await;
    let got = s.payloads("web").await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].len(), 100);
    assert_eq!(got[1].len(), 100);
    assert_eq!(got[2], "after");
    assert_eq!(
        s.metric("sluice_drops_total{reason=\"truncated\"}").await,
        2
    );
}

#[tokio::test]
async fn broken_octet_count_closes_only_that_connection() {
    let s = common::start(|_| {}).await;
    let mut bad = TcpStream::connect(s.syslog).await.unwrap();
    bad.write_all(octet("<14>1 - h web - - - before").as_bytes())
        .await
        .unwrap();
    bad.write_all(b"999999999 <14>1 - h web - - - never")
        .await
        .unwrap();
    let mut good = TcpStream::connect(s.syslog).await.unwrap();
    good.write_all(b"<14>1 - h web - - - other connection\n")
        .await
        .unwrap();
    good.shutdown().await.unwrap();
    s.wait_for_entries(2).await;
    let mut got = s.payloads("web").await;
    got.sort();
    assert_eq!(got, vec!["before", "other connection"]);
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"bad_frame\"}")
            .await,
        1
    );
    // The server closed the broken connection.
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut bad, &mut buf),
    )
    .await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

#[tokio::test]
async fn invalid_utf8_and_nul_bytes_are_kept_as_bytes() {
    let s = common::start(|_| {}).await;
    let mut tcp = TcpStream::connect(s.syslog).await.unwrap();
    let mut msg = b"<14>1 - h web - - - caf\xe9 ok".to_vec();
    let framed = [
        format!("{} ", msg.len()).into_bytes(),
        std::mem::take(&mut msg),
    ]
    .concat();
    tcp.write_all(&framed).await.unwrap();
    // A NUL ends an LF-framed message, as rsyslog treats it.
    tcp.write_all(b"<14>1 - h web - - - one\x00<14>1 - h web - - - two\n")
        .await
        .unwrap();
    tcp.write_all(b"<99999>garbage header\n").await.unwrap();
    tcp.shutdown().await.unwrap();
    s.wait_for_entries(4).await;
    let got = s.payloads("web").await;
    assert_eq!(got, vec!["caf\u{fffd} ok", "one", "two"]);
    assert_eq!(s.payloads("unknown").await, vec!["<99999>garbage header"]);
    assert_eq!(
        s.metric("sluice_drops_total{reason=\"parse_error\"}").await,
        1
    );
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let s = common::start(|c| c.ingest.idle_timeout_secs = 1).await;
    let mut tcp = TcpStream::connect(s.syslog).await.unwrap();
    tcp.write_all(b"<14>1 - h web - - - trickle").await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    // What was sent before the timeout is kept.
    s.wait_for_entries(1).await;
    assert_eq!(s.payloads("web").await, vec!["trickle"]);
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"idle_timeout\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn udp_datagrams() {
    let s = common::start(|_| {}).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(b"<14>1 2020-01-02T03:04:05Z h web - - - dgram one\n", s.udp)
        .await
        .unwrap();
    let two = format!("<11>{} h web: dgram two", bsd_two_days_ago());
    sock.send_to(two.as_bytes(), s.udp).await.unwrap();
    s.wait_for_entries(2).await;
    assert_eq!(s.payloads("web").await, vec!["dgram one", "dgram two"]);
    assert_eq!(
        s.metric("sluice_ingress_envelopes_total{protocol=\"syslog_udp\"}")
            .await,
        2
    );
}

#[tokio::test]
async fn a_frame_that_never_ends_is_closed() {
    let s = common::start(|c| c.ingest.frame_timeout_secs = 1).await;
    let mut tcp = TcpStream::connect(s.syslog).await.unwrap();
    let started = std::time::Instant::now();
    // A byte now and then keeps the connection from being idle, but the
    // frame never completes.
    let mut closed = false;
    for _ in 0..40 {
        if tcp.write_all(b"x").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
        )
        .await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickling frame kept its connection");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"frame_timeout\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn slowloris_crowds_cannot_lock_senders_out() {
    let s = common::start(|c| c.ingest.max_connections = 50).await;
    let mut crowd = Vec::new();
    for _ in 0..60 {
        let mut c = TcpStream::connect(s.syslog).await.unwrap();
        c.write_all(b"<").await.unwrap();
        crowd.push(c);
    }
    let started = std::time::Instant::now();
    let mut sender = TcpStream::connect(s.syslog).await.unwrap();
    sender
        .write_all(b"<14>1 - h web - - - got in\n")
        .await
        .unwrap();
    s.wait_for_entries(1).await;
    assert_eq!(s.payloads("web").await, vec!["got in"]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        s.metric("sluice_ingress_errors_total{reason=\"evicted\"}")
            .await
            >= 11
    );
}
