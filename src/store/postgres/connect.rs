//! `--database postgres://…`: the URL as typed, the password from a file
//! (`--database-password-file`), and TLS by `sslmode` through the one
//! rustls provider (ring).

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// How the connection is protected (`?sslmode=`, as libpq names them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP (`disable`): a database on this host or a trusted network.
    Disable,
    /// Encrypted, but the server's certificate is not checked (`require`,
    /// as libpq does it): protects against listening, not against a
    /// server in the middle.
    Require,
    /// Encrypted to a server whose certificate is signed by a trusted CA
    /// (`sslrootcert=FILE`, else the system's) for the host name in the
    /// URL (`verify-full`).
    VerifyFull { root_cert: Option<PathBuf> },
}

/// Where the database is and how to reach it.
#[derive(Clone)]
pub struct Database {
    pub(super) pg: tokio_postgres::Config,
    pub tls: TlsMode,
    /// The URL without its password, for messages and `config explain`.
    shown: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Database {
    /// Reads `postgres://user[:password]@host[:port]/db[?sslmode=…]`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let url = Url::parse(text).map_err(|e| {
            anyhow::anyhow!(
                "--database: {e}; write it as postgres://USER@HOST:5432/DATABASE?sslmode=verify-full"
            )
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            bail!(
                "--database must be a postgres:// URL (such as postgres://gatehouse@db.internal/gatehouse?sslmode=verify-full); \
                 without it gatehouse keeps its embedded database in --data-dir"
            );
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        if host.is_empty() {
            bail!("--database {}: the URL names no host", redact(&url));
        }
        if url.path().trim_start_matches('/').is_empty() {
            bail!(
                "--database {}: the URL names no database; add it as the path, such as …/gatehouse",
                redact(&url)
            );
        }
        let mut mode = None;
        let mut root_cert = None;
        let mut rest = url.clone();
        rest.set_query(None);
        {
            let mut kept = rest.query_pairs_mut();
            for (k, v) in url.query_pairs() {
                match k.as_ref() {
                    "sslmode" => mode = Some(v.into_owned()),
                    "sslrootcert" => root_cert = Some(PathBuf::from(v.as_ref())),
                    _ => {
                        kept.append_pair(&k, &v);
                    }
                }
            }
        }
        let mut rest = rest.to_string();
        if rest.ends_with('?') {
            rest.pop();
        }
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let tls = match mode.as_deref() {
            Some("disable") => TlsMode::Disable,
            Some("require") => TlsMode::Require,
            Some("verify-full") => TlsMode::VerifyFull {
                root_cert: root_cert.take(),
            },
            Some("verify-ca") => bail!(
                "--database: sslmode=verify-ca checks the CA but not the host name; use sslmode=verify-full"
            ),
            Some("prefer" | "allow") => bail!(
                "--database: sslmode={} may fall back to no encryption without saying so; \
                 use sslmode=verify-full (or require, or disable on a trusted network)",
                mode.unwrap_or_default()
            ),
            Some(other) => {
                bail!("--database: unknown sslmode={other}; use disable, require or verify-full")
            }
            None if loopback => TlsMode::Disable,
            None => bail!(
                "--database {}: say how to protect the connection to {host}: add ?sslmode=verify-full \
                 (recommended; sslrootcert=FILE for a private CA), ?sslmode=require, or \
                 ?sslmode=disable on a trusted network",
                redact(&url)
            ),
        };
        if root_cert.is_some() {
            bail!("--database: sslrootcert is only used with sslmode=verify-full");
        }
        let pg: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| anyhow::anyhow!("--database {}: {e}", redact(&url)))?;
        let mut pg = pg;
        pg.application_name("gatehouse");
        pg.connect_timeout(std::time::Duration::from_secs(5));
        pg.ssl_mode(if tls == TlsMode::Disable {
            tokio_postgres::config::SslMode::Disable
        } else {
            tokio_postgres::config::SslMode::Require
        });
        Ok(Self {
            pg,
            tls,
            shown: redact(&url),
        })
    }

    /// Sets the password from a file (`--database-password-file`, such as
    /// a systemd credential); a trailing newline is not part of it.
    pub fn with_password_file(mut self, file: &Path) -> anyhow::Result<Self> {
        if self.pg.get_password().is_some() {
            bail!(
                "--database-password-file {}: the --database URL has a password already; give it once",
                file.display()
            );
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read --database-password-file {}", file.display()))?;
        let password = text.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            bail!("--database-password-file {} is empty", file.display());
        }
        self.pg.password(password);
        Ok(self)
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The same server and user, another database (tests and `migrate`
    /// make databases next to the one named).
    pub fn with_dbname(&self, name: &str) -> Self {
        let mut other = self.clone();
        other.pg.dbname(name);
        other.shown = match self.shown.rsplit_once('/') {
            Some((head, tail)) => {
                let query = tail.split_once('?').map(|(_, q)| format!("?{q}"));
                format!("{head}/{name}{}", query.unwrap_or_default())
            }
            None => self.shown.clone(),
        };
        other
    }

    pub fn dbname(&self) -> &str {
        self.pg.get_dbname().unwrap_or_default()
    }

    /// The TLS connector for `tls`.
    pub(super) fn connector(&self) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("failed to set up TLS")?;
        let config = match &self.tls {
            TlsMode::Disable => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            TlsMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            TlsMode::VerifyFull {
                root_cert: Some(file),
            } => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_root_certs(file)? {
                    roots.add(cert).with_context(|| {
                        format!(
                            "sslrootcert {}: a certificate is not usable",
                            file.display()
                        )
                    })?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            TlsMode::VerifyFull { root_cert: None } => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder
                    .with_platform_verifier()
                    .context("cannot read the system's CA certificates")?
                    .with_no_client_auth()
            }
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// The URL as it may be shown: without its password.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("****"));
    }
    shown.to_string()
}

fn read_root_certs(path: &Path) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read sslrootcert {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "sslrootcert {} is not a PEM certificate file",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!("sslrootcert {} holds no certificate", path.display());
    }
    Ok(certs)
}

/// `sslmode=require`: any certificate, as libpq accepts it; the
/// handshake's signatures are still checked, so the session key belongs
/// to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_say_how_the_connection_is_protected() {
        let local = Database::parse("postgres://gh@127.0.0.1:5432/gatehouse").unwrap();
        assert_eq!(local.tls, TlsMode::Disable);
        let full = Database::parse(
            "postgres://gh:secret@db.internal/gatehouse?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(
            full.tls,
            TlsMode::VerifyFull {
                root_cert: Some("/etc/ca.pem".into())
            }
        );
        assert!(!full.shown().contains("secret"), "{}", full.shown());
        assert_eq!(full.dbname(), "gatehouse");
        let remote = Database::parse("postgres://gh@db.internal/gatehouse").unwrap_err();
        assert!(
            format!("{remote:#}").contains("sslmode=verify-full"),
            "{remote:#}"
        );
        for bad in [
            "mysql://gh@db/gatehouse",
            "postgres://gh@db.internal/",
            "postgres://gh@db.internal/g?sslmode=prefer",
            "postgres://gh@db.internal/g?sslmode=verify-ca",
            "postgres://gh@db.internal/g?sslmode=require&sslrootcert=/x",
        ] {
            assert!(Database::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_password_comes_from_a_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let db = Database::parse("postgres://gh@127.0.0.1/g")
            .unwrap()
            .with_password_file(&file)
            .unwrap();
        assert_eq!(db.pg.get_password(), Some(&b"s3cret"[..]));
        let twice = Database::parse("postgres://gh:x@127.0.0.1/g")
            .unwrap()
            .with_password_file(&file);
        assert!(twice.is_err());
    }
}
