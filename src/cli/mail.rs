//! `gatehouse mail test --to ADDR`: one mail, sent now, with SMTP errors
//! explained in plain words (SPEC §5).

use super::UsageError;
use crate::config::{Config, ServeArgs};
use crate::domain::EmailAddress;
use crate::mail::{Mailer, messages};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum MailCommand {
    /// Send one test mail through the configured SMTP server.
    Test {
        /// Where to send it.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// The server's settings: --smtp-url, --mail-from, --smtp-ca-file,
        /// --config… (or their GATEHOUSE_* variables).
        #[command(flatten)]
        settings: Box<ServeArgs>,
    },
}

pub fn run(data_dir: Option<PathBuf>, cmd: MailCommand) -> anyhow::Result<()> {
    let MailCommand::Test { to, settings } = cmd;
    let (config, _) =
        Config::load(data_dir, &settings).map_err(|e| UsageError(format!("{e:#}")))?;
    let to = EmailAddress::parse(&to).map_err(|m| UsageError(format!("--to: {m}")))?;
    let base_url = config.base_url_for(config.listen);
    let mailer = Mailer::new(&config.mail, &base_url).map_err(|e| UsageError(format!("{e:#}")))?;
    let Mailer::Smtp { settings: smtp, .. } = &mailer else {
        return Err(UsageError(
            "no SMTP server is configured, so mail only goes to the log. Set --smtp-url (or GATEHOUSE_SMTP_URL), such as smtp://user:pass@mail.example.com:587".into(),
        )
        .into());
    };
    let route = format!("{}:{} ({:?})", smtp.host, smtp.port, smtp.security);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let mail = messages::test(&to, base_url.as_str());
    match runtime.block_on(mailer.send(&mail)) {
        Ok(()) => {
            println!(
                "sent a test mail from {} to {to} through {route}",
                mailer.from()
            );
            Ok(())
        }
        Err(e) => anyhow::bail!("the test mail was not sent: {e}"),
    }
}
