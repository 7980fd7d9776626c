//! `sluice certs DIR`: a CA and the certificates every gRPC link needs,
//! as Loggregator's `scripts/generate-certs` makes them, so an operator can
//! turn on mutual TLS without an outside tool.
//!
//! Writes `ca.crt`/`ca.key`, `server.crt`/`server.key` (SANs `metron`,
//! `reverselogproxy`, `localhost`, `127.0.0.1`, plus every `--san`; server
//! and client auth, as Loggregator's certificates carry both) and
//! `client.crt`/`client.key` (client auth), ECDSA P-256, valid for
//! `--days` (default 365). Keys are created with mode 0600, certificates
//! 0644. Existing files are never overwritten unless `--force`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The server's names before `--san`: what Loggregator's certificates
/// carry, and loopback.
pub const SERVER_SANS: [&str; 4] = ["metron", "reverselogproxy", "localhost", "127.0.0.1"];

const FILES: [&str; 6] = [
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "client.crt",
    "client.key",
];

#[derive(clap::Args)]
pub struct CertsArgs {
    /// Where to write ca.crt, ca.key, server.crt, server.key, client.crt, client.key.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Another name or IP address for the server certificate (repeatable).
    #[arg(long = "san", value_name = "NAME")]
    sans: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 365, value_name = "N")]
    days: u32,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
}

pub fn main(args: CertsArgs) -> Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    if !args.force {
        let existing: Vec<&str> = FILES
            .into_iter()
            .filter(|f| args.dir.join(f).exists())
            .collect();
        if !existing.is_empty() {
            bail!(
                "{} already holds {} (use --force to overwrite)",
                args.dir.display(),
                existing.join(", ")
            );
        }
    }
    let set = generate(&args.sans, args.days)?;
    for (name, text, secret) in [
        ("ca.crt", &set.ca_cert, false),
        ("ca.key", &set.ca_key, true),
        ("server.crt", &set.server_cert, false),
        ("server.key", &set.server_key, true),
        ("client.crt", &set.client_cert, false),
        ("client.key", &set.client_key, true),
    ] {
        write(&args.dir.join(name), text, secret)?;
    }
    println!(
        "wrote {} (server names: {})",
        FILES
            .map(|f| args.dir.join(f).display().to_string())
            .join(", "),
        SERVER_SANS
            .iter()
            .map(|s| s.to_string())
            .chain(args.sans.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(0)
}

/// The PEM texts of one set.
pub struct CertSet {
    pub ca_cert: String,
    pub ca_key: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// A fresh CA and a server and a client certificate signed by it.
pub fn generate(extra_sans: &[String], days: u32) -> Result<CertSet> {
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(i64::from(days.max(1)));
    let validity = |p: &mut CertificateParams| {
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = until;
    };

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "sluice CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key).context("signing the CA")?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let mut names: Vec<String> = SERVER_SANS.iter().map(|s| s.to_string()).collect();
    for san in extra_sans {
        if !names.contains(san) {
            names.push(san.clone());
        }
    }
    let server_key = KeyPair::generate().context("generating the server key")?;
    let mut server = CertificateParams::new(names).context("server names")?;
    server.distinguished_name.push(DnType::CommonName, "metron");
    server.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity(&mut server);
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .context("signing the server certificate")?;

    let client_key = KeyPair::generate().context("generating the client key")?;
    let mut client = CertificateParams::new(vec!["sluice-client".to_owned()])?;
    client
        .distinguished_name
        .push(DnType::CommonName, "sluice-client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut client);
    let client_cert = client
        .signed_by(&client_key, &issuer)
        .context("signing the client certificate")?;

    Ok(CertSet {
        ca_cert: ca_pem,
        ca_key: ca_key_pem,
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    })
}

/// Writes a file, created with mode 0600 for a key (never readable by
/// others, not even for a moment) and 0644 otherwise.
fn write(path: &Path, text: &str, secret: bool) -> Result<()> {
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its mode on open: set it.
    use std::os::unix::fs::PermissionsExt as _;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
