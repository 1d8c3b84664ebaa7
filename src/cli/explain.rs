//! `gatehouse config explain` (each effective setting, its value with
//! secrets masked, and where it came from) and `gatehouse healthcheck`.

use super::UsageError;
use crate::config::{Config, FILE_KEYS, ServeArgs};
use anyhow::Context;
use clap::{Args, CommandFactory, Subcommand, parser::ValueSource};
use serde_json::json;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print every effective setting and where it came from (default,
    /// file, env, flag), with the same flags as `serve`.
    Explain {
        #[command(flatten)]
        settings: Box<ServeArgs>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    /// The address to ask [default: http://<listen>/healthz of the settings].
    #[arg(long, value_name = "URL")]
    url: Option<url::Url>,
    #[command(flatten)]
    settings: Box<ServeArgs>,
}

pub fn run(data_dir: Option<PathBuf>, cmd: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Explain { settings, json } = cmd;
    let (config, warnings) =
        Config::load(data_dir.clone(), &settings).map_err(|e| UsageError(format!("{e:#}")))?;
    let file_keys: Vec<String> = match &settings.config {
        Some(path) => std::fs::read_to_string(path)
            .ok()
            .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    // How clap got each flag: from the command line or the environment.
    let matches = crate::cli::Cli::command()
        .try_get_matches_from(std::env::args_os())
        .ok();
    let explain = matches
        .as_ref()
        .and_then(|m| m.subcommand_matches("config"))
        .and_then(|m| m.subcommand_matches("explain"));
    let source_of = |key: &str| -> &'static str {
        match explain.and_then(|m| m.try_get_raw(key).ok().flatten().and(m.value_source(key))) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "env",
            _ if key == "data_dir" && data_dir.is_some() => "flag/env",
            _ if file_keys.iter().any(|k| k == key) => "file",
            _ => "default",
        }
    };
    let rows: Vec<(&str, String, &str)> = config
        .describe()
        .into_iter()
        .map(|(k, v)| (k, v, source_of(k)))
        .collect();
    debug_assert_eq!(rows.len(), FILE_KEYS.len());
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(k, v, s)| json!({"key": k, "value": v, "source": s}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        writeln!(out, "{:<24} {:<9} VALUE", "SETTING", "FROM")?;
        for (k, v, s) in &rows {
            writeln!(out, "{k:<24} {s:<9} {v}")?;
        }
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// GET /healthz on the running server; exit 0 on 200.
pub fn healthcheck(data_dir: Option<PathBuf>, args: &HealthcheckArgs) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(u) => u.clone(),
        None => {
            let (config, _) =
                Config::load(data_dir, &args.settings).map_err(|e| UsageError(format!("{e:#}")))?;
            let mut listen = config.listen;
            if listen.ip().is_unspecified() {
                listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            url::Url::parse(&format!("http://{listen}/healthz")).expect("an address makes a URL")
        }
    };
    if url.scheme() != "http" {
        return Err(UsageError("healthcheck speaks plain http to the server itself; give --url http://HOST:PORT/healthz".into()).into());
    }
    let host = url.host_str().context("the URL has no host")?;
    let addr = format!("{host}:{}", url.port_or_known_default().unwrap_or(80));
    let mut stream = std::net::TcpStream::connect(&addr)
        .with_context(|| format!("no server answers at {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        url.path()
    )?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .context("the server did not answer in time")?;
    let status = reply.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        println!("healthy: {url}");
        Ok(())
    } else {
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        anyhow::bail!("unhealthy: {url} answered {status}: {body}")
    }
}
