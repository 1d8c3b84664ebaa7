//! SMTP with mail-send: the three ways of SPEC §5, and errors explained in
//! plain words (what `gatehouse mail test` prints, and the outbox logs).

use super::{Mailbox, SendError};
use crate::domain::Mail;
use anyhow::{Context, bail};
use mail_send::SmtpClientBuilder;
use mail_send::mail_builder::MessageBuilder;
use mail_send::smtp::message::Parameters;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte (port 465).
    Tls,
    /// `smtp://`: plain, then STARTTLS, which is required (port 587).
    StartTls,
    /// `smtp://…?tls=none`: no encryption, for a relay on the same host.
    Plain,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpSettings {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

impl SmtpSettings {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let hint = "write --smtp-url as smtp://user:pass@host:587, smtps://user:pass@host:465 or smtp://localhost:25?tls=none";
        let url = url::Url::parse(text.trim())
            .with_context(|| format!("--smtp-url is not a URL; {hint}"))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .with_context(|| format!("--smtp-url has no host; {hint}"))?;
        let plain = url.query_pairs().any(|(k, v)| k == "tls" && v == "none");
        let (security, default_port) = match (url.scheme(), plain) {
            ("smtps", false) => (Security::Tls, 465),
            ("smtp", false) => (Security::StartTls, 587),
            ("smtp", true) => (Security::Plain, 25),
            ("smtps", true) => {
                bail!("--smtp-url: smtps:// always uses TLS; remove ?tls=none or use smtp://")
            }
            (other, _) => bail!("--smtp-url scheme {other:?} is not smtp or smtps; {hint}"),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(pass)) => Some((decode(user), decode(pass))),
            (_, None) => bail!("--smtp-url has a user name but no password; {hint}"),
        };
        Ok(Self {
            host: host.trim_matches(|c| c == '[' || c == ']').to_string(),
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }
}

/// The TLS settings: the system's CAs, or only those in `ca_file`.
pub fn tls_connector(ca_file: Option<&Path>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("failed to set up TLS")?;
    let config = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in super::read_ca_file(path)? {
                roots.add(cert).with_context(|| {
                    format!(
                        "--smtp-ca-file {}: a certificate is not usable",
                        path.display()
                    )
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .context("cannot read the system's CA certificates")?
                .with_no_client_auth()
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// For plain SMTP: a TLS setting that is never used.
pub(super) fn tls_connector_without_roots() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub(super) async fn send(
    s: &SmtpSettings,
    tls: &tokio_rustls::TlsConnector,
    timeout: Duration,
    from: &Mailbox,
    mail: &Mail,
) -> Result<(), SendError> {
    let mut builder =
        SmtpClientBuilder::new_with_tls_connector(s.host.clone(), s.port, tls.clone())
            .implicit_tls(s.security == Security::Tls)
            .timeout(timeout);
    if let Some((user, pass)) = &s.credentials {
        builder = builder.credentials((user.clone(), pass.clone()));
    }
    let message = build(from, mail);
    let delivered = match s.security {
        Security::Plain => match builder.connect_plain().await {
            Ok(client) => deliver(client, from, mail, &message).await,
            Err(e) => Err((Stage::Connect, Some(e))),
        },
        Security::Tls | Security::StartTls => match builder.connect().await {
            Ok(client) => deliver(client, from, mail, &message).await,
            Err(e) => Err((Stage::Connect, Some(e))),
        },
    };
    delivered.map_err(|(stage, e)| match e {
        Some(e) => explain(s, &e, stage),
        None => SendError("the mail could not be built".into()),
    })
}

fn build(from: &Mailbox, mail: &Mail) -> Vec<u8> {
    let sender = match &from.name {
        Some(n) => mail_send::mail_builder::headers::address::Address::new_address(
            Some(n.clone()),
            from.address.to_string(),
        ),
        None => mail_send::mail_builder::headers::address::Address::new_address(
            None::<String>,
            from.address.to_string(),
        ),
    };
    MessageBuilder::new()
        .from(sender)
        .to(mail.to.as_str().to_string())
        .subject(mail.subject.clone())
        .text_body(mail.text.clone())
        .html_body(mail.html.clone())
        .write_to_vec()
        .unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Stage {
    Connect,
    Sender,
    Recipient,
    Data,
}

/// The envelope step by step, so an error says which step failed.
async fn deliver<T: AsyncRead + AsyncWrite + Unpin>(
    mut client: mail_send::SmtpClient<T>,
    from: &Mailbox,
    mail: &Mail,
    message: &[u8],
) -> Result<(), (Stage, Option<mail_send::Error>)> {
    if message.is_empty() {
        return Err((Stage::Data, None));
    }
    let none = Parameters::default();
    client
        .mail_from(from.address.as_str(), &none)
        .await
        .map_err(|e| (Stage::Sender, Some(e)))?;
    client
        .rcpt_to(mail.to.as_str(), &none)
        .await
        .map_err(|e| (Stage::Recipient, Some(e)))?;
    client
        .data(message)
        .await
        .map_err(|e| (Stage::Data, Some(e)))?;
    let _ = client.quit().await;
    Ok(())
}

fn explain(s: &SmtpSettings, e: &mail_send::Error, stage: Stage) -> SendError {
    use mail_send::Error as E;
    let at = format!("{}:{}", s.host, s.port);
    let text = match (stage, e) {
        (_, E::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "connection refused by {at}: no mail server listens there. Check the host and port in --smtp-url."
        ),
        (_, E::Io(io)) => format!(
            "cannot talk to {at} ({io}). Check the host name in --smtp-url and the network."
        ),
        (_, E::Tls(t)) if t.to_string().to_lowercase().contains("certificate") => format!(
            "the TLS certificate of {at} was refused ({t}). Check that the host name in --smtp-url is the one on the certificate, or name its CA with --smtp-ca-file."
        ),
        (_, E::Tls(t)) => format!(
            "TLS with {at} failed ({t}). Wrong port for the TLS mode? smtps:// is TLS from the start (port 465); smtp:// starts plain and upgrades with STARTTLS (port 587)."
        ),
        (_, E::Timeout) => format!(
            "no answer from {at} in time. Wrong port for the TLS mode? (smtps:// on a STARTTLS port, or smtp:// on port 465, waits for a greeting that never comes.) Or a firewall drops the connection."
        ),
        (_, E::UnparseableReply) => format!(
            "{at} did not answer in SMTP. Wrong port for the TLS mode? Use smtps:// for port 465 and smtp:// for port 587."
        ),
        (_, E::MissingStartTls) => format!(
            "{at} does not offer STARTTLS, which smtp:// requires. Use smtps:// if it speaks TLS from the start (port 465); use ?tls=none only for a relay on this same host."
        ),
        (_, E::AuthenticationFailed(r)) => format!(
            "{at} refused the user name or password ({}). Check the credentials in --smtp-url.",
            r.message()
        ),
        (_, E::MissingCredentials | E::UnsupportedAuthMechanism | E::Auth(_)) => format!(
            "authentication with {at} failed ({e}). Check the user name and password in --smtp-url; the server may need another method."
        ),
        (Stage::Sender, E::UnexpectedReply(r)) => format!(
            "{at} refused the sender ({} {}). Check --mail-from: many providers accept only addresses of your own account or domain.",
            r.code(),
            r.message()
        ),
        (Stage::Recipient, E::UnexpectedReply(r)) => format!(
            "{at} refused the recipient ({} {}). Check the address.",
            r.code(),
            r.message()
        ),
        (_, other) => format!("{at}: {other}"),
    };
    SendError(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_url_forms_parse() {
        let s = SmtpSettings::parse("smtp://me%40x.org:p%3Ass@mail.example.com").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("mail.example.com", 587, Security::StartTls)
        );
        assert_eq!(s.credentials, Some(("me@x.org".into(), "p:ss".into())));
        let s = SmtpSettings::parse("smtps://u:p@mail.example.com").unwrap();
        assert_eq!((s.port, s.security), (465, Security::Tls));
        let s = SmtpSettings::parse("smtp://localhost?tls=none").unwrap();
        assert_eq!(
            (s.port, s.security, s.credentials),
            (25, Security::Plain, None)
        );
    }

    #[test]
    fn bad_urls_say_how_to_write_one() {
        for bad in [
            "mail.example.com",
            "http://x",
            "smtps://x?tls=none",
            "smtp://user@x",
        ] {
            let e = format!("{:#}", SmtpSettings::parse(bad).unwrap_err());
            assert!(e.contains("--smtp-url"), "{bad}: {e}");
        }
    }

    #[test]
    fn debug_never_prints_the_password() {
        let s = SmtpSettings::parse("smtp://u:hunter2@x").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
