//! `syslog://` and `syslog-tls://` drains: RFC 5424 messages as Loggregator
//! writes them, octet-counted (RFC 6587 `LEN SP MSG`, MSG ending in LF as
//! Loggregator sends it), over TCP or TLS (rustls, see [`super::tls`]).

use tokio_rustls::TlsConnector;

use super::encode::SyslogEncoder;
use super::stream::{peer_name, StreamWriter};
use super::{tls, DrainWriter, WriteError, WriterContext, HANDSHAKE_TIMEOUT};
use crate::spec::{SyslogTarget, TlsFiles};

fn encoder(
    ctx: &WriterContext,
    target: &SyslogTarget,
) -> impl FnMut(&envelope::Entry, &mut Vec<u8>) + Send {
    let mut syslog = SyslogEncoder::new(ctx, target.omit_metadata);
    move |entry, out| syslog.frame(entry, out)
}

/// Plain TCP.
pub(super) async fn connect_tcp(
    ctx: &WriterContext,
    target: &SyslogTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let (stream, addr) = super::connect_tcp(ctx, &target.endpoint).await?;
    let peer = peer_name(&target.endpoint.host, addr);
    tracing::debug!(drain = %ctx.name, %peer, "syslog drain connected");
    Ok(Box::new(StreamWriter::new(
        stream,
        peer,
        encoder(ctx, target),
        ctx.max_bytes(),
    )))
}

/// TLS: the server is verified against the system roots, or only against
/// `?ca=` when given; `?cert=` and `?key=` present a client certificate.
pub(super) async fn connect_tls(
    ctx: &WriterContext,
    target: &SyslogTarget,
    files: &TlsFiles,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let host = &target.endpoint.host;
    // Files first: a bad certificate is fatal whether or not the receiver is up.
    let config = tls::client_config(files, &ctx.paths)?;
    let server_name = tls::server_name(host)?;
    let (stream, addr) = super::connect_tcp(ctx, &target.endpoint).await?;
    let peer = peer_name(host, addr);
    let handshake = TlsConnector::from(config).connect(server_name, stream);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err(WriteError::Retry(tls::explain(
                format!("TLS handshake with {peer}: {e}"),
                files.ca.as_deref(),
                ctx.paths.tls_dirs(),
            )))
        }
        Err(_) => {
            return Err(WriteError::Retry(format!(
                "TLS handshake with {peer}: timed out after {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            )))
        }
    };
    tracing::debug!(drain = %ctx.name, %peer, "syslog-tls drain connected");
    Ok(Box::new(StreamWriter::new(
        stream,
        peer,
        encoder(ctx, target),
        ctx.max_bytes(),
    )))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::super::testutil::{batch, ctx, ctx_with, err_text, read_frames, Pki};
    use super::super::{connect, WriteError};
    use crate::netpolicy::NetPolicy;

    #[tokio::test]
    async fn tcp_batches_are_octet_counted_rfc5424() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut writer = connect(&ctx(&format!("syslog://127.0.0.1:{port}")))
            .await
            .unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        writer
            .send(&batch(&["hello", "wörld with spaces"]))
            .await
            .unwrap();
        writer.send(&batch(&["third"])).await.unwrap();
        let frames = read_frames(&mut conn, 3).await;
        assert_eq!(frames.len(), 3);
        assert!(
            frames[0].starts_with("<14>1 2023-11-14T22:13:20.000000Z "),
            "{}",
            frames[0]
        );
        assert!(
            frames[0].contains(" app-guid [-/0] - - hello\n"),
            "{}",
            frames[0]
        );
        assert!(frames[1].ends_with(" wörld with spaces\n"), "{}", frames[1]);
        assert!(frames[2].ends_with(" third\n"));
    }

    #[tokio::test]
    async fn a_closed_connection_fails_the_next_batch() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut writer = connect(&ctx(&format!("syslog://127.0.0.1:{port}")))
            .await
            .unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        drop(conn);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = err_text(writer.send(&batch(&["lost?"])).await);
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        assert!(err.to_string().contains("closed the connection"), "{err}");
    }

    #[tokio::test]
    async fn refused_and_forbidden_addresses() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = err_text(connect(&ctx(&format!("syslog://127.0.0.1:{port}"))).await);
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("connect 127.0.0.1:{port}: Connection refused")),
            "{err}"
        );

        let url = format!("syslog://127.0.0.1:{port}");
        let err = err_text(connect(&ctx_with(&url, NetPolicy::default(), None)).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1") && text.contains("--allow-drain-ranges"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn tls_with_private_ca() {
        let pki = Pki::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = pki.acceptor(false);
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            read_frames(&mut tls, 2).await
        });
        let url = format!("syslog-tls://localhost:{port}?ca={}", pki.ca.display());
        let mut writer = connect(&ctx(&url)).await.unwrap();
        writer.send(&batch(&["one", "two"])).await.unwrap();
        let frames = server.await.unwrap();
        assert!(
            frames[0].ends_with(" one\n") && frames[1].ends_with(" two\n"),
            "{frames:?}"
        );
    }

    #[tokio::test]
    async fn mtls_presents_the_client_certificate() {
        let pki = Pki::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = pki.acceptor(true);
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let has_client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            (has_client_cert, read_frames(&mut tls, 1).await)
        });
        // An IP address as the host: verified against the certificate's IP SAN.
        let url = format!(
            "syslog-tls://127.0.0.1:{port}?ca={}&cert={}&key={}",
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        );
        let mut writer = connect(&ctx(&url)).await.unwrap();
        writer.send(&batch(&["mutual"])).await.unwrap();
        let (has_client_cert, frames) = server.await.unwrap();
        assert!(has_client_cert);
        assert!(frames[0].ends_with(" mutual\n"));
    }

    #[tokio::test]
    async fn mtls_server_refuses_a_client_without_certificate() {
        let pki = Pki::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = pki.acceptor(true);
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(mut tls) => {
                    let mut buf = Vec::new();
                    tls.read_to_end(&mut buf).await.is_err()
                }
                Err(_) => true,
            }
        });
        let url = format!("syslog-tls://localhost:{port}?ca={}", pki.ca.display());
        // TLS 1.3 finishes the client's side of the handshake before the
        // server checks for a certificate: the refusal shows on a later batch.
        if let Ok(mut writer) = connect(&ctx(&url)).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let err = err_text(writer.send(&batch(&["x"])).await);
            assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        }
        assert!(
            server.await.unwrap(),
            "server accepted a client without certificate"
        );
    }

    #[tokio::test]
    async fn unknown_ca_fails_the_handshake_clearly() {
        let pki = Pki::new();
        let other = Pki::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = pki.acceptor(false);
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(tcp).await;
        });
        let url = format!("syslog-tls://127.0.0.1:{port}?ca={}", other.ca.display());
        let err = err_text(connect(&ctx(&url)).await);
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "TLS handshake with 127.0.0.1:{port}: invalid peer certificate: UnknownIssuer (the receiver's certificate is not signed by the CA in ?ca="
            )),
            "{text}"
        );
    }

    /// A receiver with a self-signed certificate: rustls's words are
    /// explained, with `?ca=` and where its file goes; a self-signed
    /// certificate that is not a CA works when given as `?ca=`.
    #[tokio::test]
    async fn self_signed_receivers_are_explained() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        for is_ca in [true, false] {
            let dir = super::super::testutil::TempDir::new("selfsigned");
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            if is_ca {
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            }
            let cert = params.self_signed(&key).unwrap();
            let pem = dir.file("self.pem", &cert.pem());
            let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut sink = Vec::new();
                        let _ = tls.read_to_end(&mut sink).await;
                    }
                }
            });
            let url = format!("syslog-tls://localhost:{port}?ca={}", pem.display());
            let given_ca = connect(&ctx(&url)).await;
            if is_ca {
                let text = err_text(given_ca).to_string();
                assert!(text.contains("CaUsedAsEndEntity"), "{text}");
                assert!(
                    text.contains("CA:FALSE") && text.contains("?ca=FILE"),
                    "{text}"
                );
                assert!(text.contains("[drains] tls_dirs ("), "{text}");
            } else {
                assert!(given_ca.is_ok(), "self-signed, not a CA, given as ?ca=");
            }
        }
        let text = super::super::tls::explain(
            "TLS handshake with h:1: invalid peer certificate: UnknownIssuer".into(),
            None,
            &[std::path::PathBuf::from("/data/tls")],
        );
        assert!(
            text.contains("self-signed")
                && text.contains("[drains] tls_dirs (/data/tls)")
                && text.contains("?ca=FILE"),
            "{text}"
        );
        assert_eq!(
            super::super::tls::explain("connect h:1: refused".into(), None, &[]),
            "connect h:1: refused"
        );
    }

    #[tokio::test]
    async fn unusable_key_files_are_fatal() {
        let pki = Pki::new();
        let garbage = pki.dir.file("garbage.pem", "not a key\n");
        let url = format!(
            "syslog-tls://127.0.0.1:1?cert={}&key={}",
            pki.client_cert.display(),
            garbage.display()
        );
        let err = err_text(connect(&ctx(&url)).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
        assert!(
            err.to_string().contains("key file") && err.to_string().contains("garbage.pem"),
            "{err}"
        );
        let url = format!("syslog-tls://127.0.0.1:1?ca={}", garbage.display());
        let err = err_text(connect(&ctx(&url)).await);
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
