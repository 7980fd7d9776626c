//! TLS client configuration for `syslog-tls://` and `https://` drains
//! (rustls with the ring provider).
//!
//! The server is always verified. Trust anchors are the system's roots
//! (loaded once per process), or, when the URL names `?ca=FILE`, only the
//! certificates in that PEM file (a private CA). `?cert=` and `?key=`
//! present a client certificate (mTLS); the key may be PKCS#8, PKCS#1 (RSA)
//! or SEC1 (EC) PEM. Files are read on every connect, so renewed
//! certificates are picked up on the next reconnect, and only from
//! `[drains] tls_dirs` ([`PathPolicy::tls_file`], checked on every
//! connect too). A file that cannot be used is a [`WriteError::Fatal`]
//! naming the file.
//!
//! A receiver the client does not trust fails the handshake with
//! rustls's terse words (`invalid peer certificate: UnknownIssuer`,
//! `Other(OtherError(CaUsedAsEndEntity))`); [`explain`] adds what they
//! mean and what to do (`?ca=FILE` from `[drains] tls_dirs`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::WriteError;
use crate::paths::PathPolicy;
use crate::spec::TlsFiles;

/// The client configuration for a URL's `ca`, `cert` and `key` options,
/// read from where `paths` allows.
pub fn client_config(
    files: &TlsFiles,
    paths: &PathPolicy,
) -> Result<Arc<ClientConfig>, WriteError> {
    let allowed = |option: &'static str, path: &Option<std::path::PathBuf>| {
        path.as_deref()
            .map(|p| paths.tls_file(option, p, false))
            .transpose()
            .map_err(|e| WriteError::Fatal(e.to_string()))
    };
    let (ca, cert, key) = (
        allowed("ca", &files.ca)?,
        allowed("cert", &files.cert)?,
        allowed("key", &files.key)?,
    );
    let roots = match &ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("ca", ca)? {
                roots.add(cert).map_err(|e| {
                    WriteError::Fatal(format!(
                        "ca file {}: unusable certificate: {e}",
                        ca.display()
                    ))
                })?;
            }
            roots
        }
        None => native_roots()?,
    };
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| WriteError::Fatal(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
    let config = match (&cert, &key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("cert", cert)?;
            let key_der = read_key(key)?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                WriteError::Fatal(format!(
                    "client certificate {} with key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `error` (a TLS failure's text) with, when it is an untrusted receiver
/// certificate, what that means and how to fix it: `?ca=FILE` with a file
/// in one of `tls_dirs` (`ca` is the drain's `?ca=`, if any).
pub fn explain(error: String, ca: Option<&Path>, tls_dirs: &[std::path::PathBuf]) -> String {
    let dirs = tls_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    let dirs = if dirs.is_empty() {
        "<data-dir>/tls".to_owned()
    } else {
        dirs
    };
    let place = format!(
        "put it as a PEM file in [drains] tls_dirs ({dirs}) and add ?ca=FILE to the drain URL"
    );
    let hint = if error.contains("CaUsedAsEndEntity") {
        format!(
            "the receiver presents a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes by default) as its own server certificate, which TLS clients refuse even when they trust it: give the receiver a certificate signed by that CA, or a self-signed one made with `-addext basicConstraints=critical,CA:FALSE -addext subjectAltName=DNS:<host>`; then trust the CA (or that certificate): {place}"
        )
    } else if error.contains("UnknownIssuer") {
        match ca {
            Some(ca) => format!(
                "the receiver's certificate is not signed by the CA in ?ca={} (nor is it that certificate): give the CA that signed it, or the receiver's own self-signed certificate",
                ca.display()
            ),
            None => format!(
                "the receiver's certificate is not signed by a CA among the system's roots (it is self-signed, or from a private CA): to trust that CA (or the self-signed certificate), {place}"
            ),
        }
    } else {
        return error;
    };
    format!("{error} ({hint})")
}

/// The name to send (SNI) and verify: a DNS name, or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, WriteError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| WriteError::Fatal(format!("{host:?} is not a valid TLS server name: {e}")))
}

/// Every certificate in a PEM file; none is an error.
pub fn read_certs(option: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, WriteError> {
    let bad =
        |reason: String| WriteError::Fatal(format!("{option} file {}: {reason}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, WriteError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let reason = match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no PEM private key in it".to_owned(),
            other => other.to_string(),
        };
        WriteError::Fatal(format!("key file {}: {reason}", path.display()))
    })
}

/// The system's trust anchors, loaded once (a failed load is tried again
/// on the next connect).
fn native_roots() -> Result<RootCertStore, WriteError> {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    if let Some(roots) = ROOTS.get() {
        return Ok(roots.clone());
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        let why = loaded
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(WriteError::Retry(format!(
            "no system root certificates found{why}; install ca-certificates or give the drain ?ca=FILE"
        )));
    }
    Ok(ROOTS.get_or_init(|| roots).clone())
}
