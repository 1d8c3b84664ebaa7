//! Mail (SPEC §5): what a mail is, how it leaves (SMTP through mail-send,
//! or the log when no SMTP server is configured), the outbox worker that
//! delivers stored mail with retries, and the messages themselves.
//!
//! Nothing is sent from a request: a page writes its mail to the outbox
//! in the same transaction as the token it carries, and the worker sends
//! it. A page never waits on SMTP, and a restart resumes the outbox.

pub mod messages;
pub mod outbox;
pub mod requests;
pub mod smtp;

pub use smtp::{Security, SmtpSettings};

use crate::domain::{EmailAddress, Mail};
use anyhow::{Context, bail};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use url::Url;

/// A sender: an address with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// `login@example.com` or `Login <login@example.com>`.
pub fn parse_mailbox(text: &str) -> anyhow::Result<Mailbox> {
    let text = text.trim();
    let (name, addr) = match (text.find('<'), text.strip_suffix('>')) {
        (Some(i), Some(rest)) => (
            Some(text[..i].trim().trim_matches('"').to_string()),
            &rest[i + 1..],
        ),
        _ => (None, text),
    };
    let address = EmailAddress::parse(addr).map_err(|m| anyhow::anyhow!("{m}"))?;
    Ok(Mailbox {
        name: name.filter(|n| !n.is_empty()),
        address,
    })
}

/// Why a mail did not go out, in plain words with what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// How mail leaves gatehouse.
pub enum Mailer {
    Smtp {
        settings: SmtpSettings,
        from: Mailbox,
        tls: tokio_rustls::TlsConnector,
        timeout: Duration,
    },
    /// No SMTP server: each mail is written to the log, links and all.
    Log { from: Mailbox },
}

impl Mailer {
    pub fn new(config: &crate::config::MailConfig, base_url: &Url) -> anyhow::Result<Self> {
        let from = match &config.from {
            Some(f) => parse_mailbox(f)?,
            None => default_sender(base_url)?,
        };
        let Some(settings) = config.smtp.clone() else {
            return Ok(Self::Log { from });
        };
        // A plain relay needs no certificates (a bare container has none).
        let tls = if settings.security == Security::Plain {
            smtp::tls_connector_without_roots()
        } else {
            smtp::tls_connector(config.ca_file.as_deref())?
        };
        Ok(Self::Smtp {
            settings,
            from,
            tls,
            timeout: config.timeout,
        })
    }

    pub fn is_log(&self) -> bool {
        matches!(self, Self::Log { .. })
    }

    pub fn from(&self) -> &Mailbox {
        match self {
            Self::Smtp { from, .. } | Self::Log { from } => from,
        }
    }

    /// Sends one mail now. Only the outbox worker and `mail test` call this.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        match self {
            Self::Smtp {
                settings,
                from,
                tls,
                timeout,
            } => smtp::send(settings, tls, *timeout, from, mail).await,
            Self::Log { from } => {
                tracing::warn!(
                    from = %from, to = %mail.to, subject = %mail.subject,
                    "no SMTP server is configured (--smtp-url), so this mail is only written here:\n{}",
                    mail.text
                );
                Ok(())
            }
        }
    }
}

/// `gatehouse@<host of the base URL>`, or `gatehouse@localhost` when the
/// host is an IP address.
fn default_sender(base_url: &Url) -> anyhow::Result<Mailbox> {
    let host = match base_url.host() {
        Some(url::Host::Domain(d)) if d.contains('.') => d.to_string(),
        _ => "localhost".to_string(),
    };
    parse_mailbox(&format!("gatehouse <gatehouse@{host}>"))
}

/// Reads a PEM file of CA certificates.
pub(crate) fn read_ca_file(
    path: &Path,
) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read --smtp-ca-file {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "--smtp-ca-file {} is not a PEM certificate file",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!("--smtp-ca-file {} holds no certificate", path.display());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_parse_with_or_without_a_name() {
        let m = parse_mailbox("Login Desk <Login@Example.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Login Desk"));
        assert_eq!(m.address.as_str(), "login@example.com");
        assert_eq!(parse_mailbox("a@example.com").unwrap().name, None);
        assert!(parse_mailbox("not an address").is_err());
    }

    #[test]
    fn the_default_sender_uses_the_base_urls_domain() {
        let url = Url::parse("https://login.example.com/").unwrap();
        assert_eq!(
            default_sender(&url).unwrap().address.as_str(),
            "gatehouse@login.example.com"
        );
        let ip = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            default_sender(&ip).unwrap().address.as_str(),
            "gatehouse@localhost"
        );
    }
}
