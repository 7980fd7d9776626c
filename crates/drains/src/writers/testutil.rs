//! Helpers for the writers' tests: entries, contexts (loopback allowed),
//! temporary directories and a test PKI.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use envelope::{Entry, Envelope, LogType};
use metrics::Metrics;

use super::WriterContext;
use crate::format::Format;
use crate::netpolicy::NetPolicy;
use crate::paths::PathPolicy;
use crate::spec::DrainUrl;

/// A test needs `program`, which could not be started (`error`): with
/// `CI=true` in the environment the test fails; elsewhere it is skipped
/// with a note on stderr.
pub(super) fn missing_program(program: &str, error: &std::io::Error) {
    let in_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    assert!(
        !in_ci,
        "{program} is needed by this test and could not be started ({error}); install it (CI=true: not skipping)"
    );
    eprintln!("note: {program} could not be started ({error}): SKIPPING this test (it fails when CI=true)");
}

/// A context for `url` whose policy allows loopback, whose file drains
/// and TLS files may be anywhere under the temp dir, with the default
/// `max_record`.
pub(super) fn ctx(url: &str) -> WriterContext {
    ctx_with(
        url,
        NetPolicy::from_list("127.0.0.0/8,::1/128").expect("policy"),
        None,
    )
}

pub(super) fn ctx_with(url: &str, policy: NetPolicy, format: Option<Format>) -> WriterContext {
    WriterContext {
        name: "test".into(),
        url: DrainUrl::parse(url).expect("drain url"),
        format,
        policy: Arc::new(policy),
        paths: Arc::new(PathPolicy::new(
            &[std::env::temp_dir()],
            &[std::env::temp_dir()],
        )),
        created: 0,
        max_record: 64 * 1024,
        metrics: Arc::new(Metrics::default()),
        syslog_extras: Arc::default(),
    }
}

/// A log entry from app `app` with payload `text`.
pub(super) fn entry(seq: u64, text: &str) -> Arc<Entry> {
    let env = Envelope::log(
        1_700_000_000_000_000_000 + seq as i64,
        "app-guid",
        "0",
        Bytes::copy_from_slice(text.as_bytes()),
        LogType::Out,
    );
    let mut entry = Entry::new(env);
    entry.seq = seq;
    Arc::new(entry)
}

pub(super) fn batch(texts: &[&str]) -> Vec<Arc<Entry>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| entry(i as u64 + 1, t))
        .collect()
}

/// A directory removed on drop; its path is canonical (symlink checks
/// compare against it).
pub(crate) struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-drains-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir.canonicalize().expect("canonical temp dir"))
    }

    pub(super) fn file(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test PKI: a CA, a server certificate for `localhost` and 127.0.0.1,
/// and a client certificate, all as PEM files.
pub(super) struct Pki {
    pub dir: TempDir,
    pub ca: std::path::PathBuf,
    pub client_cert: std::path::PathBuf,
    pub client_key: std::path::PathBuf,
    pub server_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub server_key: String,
    pub ca_der: rustls_pki_types::CertificateDer<'static>,
}

impl Pki {
    pub(super) fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = TempDir::new("pki");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("sluice test CA {}", dir.0.display()),
        );
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("server cert");

        let client_key = KeyPair::generate().expect("client key");
        let mut client_params =
            CertificateParams::new(vec!["client.test".to_owned()]).expect("client params");
        client_params
            .distinguished_name
            .push(DnType::CommonName, "sluice test client");
        let client_cert = client_params
            .signed_by(&client_key, &issuer)
            .expect("client cert");

        Pki {
            ca: dir.file("ca.pem", &ca_cert.pem()),
            client_cert: dir.file("client.pem", &client_cert.pem()),
            client_key: dir.file("client.key", &client_key.serialize_pem()),
            server_chain: vec![server_cert.der().clone()],
            server_key: server_key.serialize_pem(),
            ca_der: ca_cert.der().clone(),
            dir,
        }
    }

    /// A TLS acceptor with the server certificate; with `client_auth`, a
    /// client certificate from the CA is required.
    pub(super) fn acceptor(&self, client_auth: bool) -> tokio_rustls::TlsAcceptor {
        use rustls_pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("versions");
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).expect("ca root");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(self.server_key.as_bytes())
            .expect("server key pem");
        let config = builder
            .with_single_cert(self.server_chain.clone(), key)
            .expect("server config");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Splits strictly octet-counted frames (`LEN SP MSG`, nothing between);
/// `None` if `buf` is not exactly a sequence of them.
pub(super) fn frames(mut buf: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let space = buf.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&buf[..space]).ok()?.parse().ok()?;
        let msg = buf.get(space + 1..space + 1 + len)?;
        out.push(String::from_utf8_lossy(msg).into_owned());
        buf = &buf[space + 1 + len..];
    }
    Some(out)
}

/// Reads from `stream` until `n` complete frames arrived (5 s at most).
pub(super) async fn read_frames<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    n: usize,
) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(frames) = frames(&buf) {
            if frames.len() >= n {
                return frames;
            }
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("frames in time")
            .expect("read");
        assert!(
            read > 0,
            "stream ended after {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..read]);
    }
}

pub(super) fn err_text<T>(r: Result<T, super::WriteError>) -> super::WriteError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}
