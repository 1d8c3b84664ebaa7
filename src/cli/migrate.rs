//! `gatehouse migrate --to postgres://…|DIR`: copies the whole store
//! (accounts with their hashes, groups, sessions, lockout counters,
//! invitations, one-time tokens, the outbox, the audit log, the login
//! history, the password key and the counters) to the other backend, or
//! back, and proves the copy by row counts and a SHA-256 per table read
//! back from the target.

use super::UsageError;
use crate::config::Config;
use crate::store::postgres::{Database, PgStore};
use crate::store::redb::RedbStore;
use crate::store::transfer::{Snapshot, TableSum, Transfer};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Where to copy to: a PostgreSQL database (postgres://…) or a data
    /// directory (its gatehouse.redb, made when missing).
    #[arg(long, value_name = "URL|DIR")]
    to: String,
    /// Replace everything the target holds (it must be empty otherwise).
    #[arg(long)]
    force: bool,
}

enum Target {
    Postgres(Box<Database>),
    Redb(PathBuf),
}

pub fn run(config: &Config, args: &MigrateArgs) -> anyhow::Result<()> {
    let target = if args.to.starts_with("postgres://") || args.to.starts_with("postgresql://") {
        Target::Postgres(Box::new(Database::parse(&args.to)?))
    } else {
        Target::Redb(PathBuf::from(&args.to))
    };
    let source_db = config.database()?;
    match (&source_db, &target) {
        (None, Target::Redb(dir)) if same_dir(dir, &config.data_dir) => {
            return Err(UsageError(format!(
                "--to {} is the data directory gatehouse uses now; name another one",
                dir.display()
            ))
            .into());
        }
        (Some(a), Target::Postgres(b)) if a.shown() == b.shown() => {
            return Err(UsageError(
                "--to names the database gatehouse uses now; name another one".into(),
            )
            .into());
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let source: Box<dyn Transfer> = match &source_db {
            Some(db) => Box::new(PgStore::open(db).await?),
            None => Box::new(super::admin::open_existing(&config.data_dir)?),
        };
        let (target_store, shown): (Box<dyn Transfer>, String) = match &target {
            Target::Postgres(db) => (Box::new(PgStore::open(db).await?), db.shown().to_owned()),
            Target::Redb(dir) => (
                Box::new(RedbStore::open(dir)?),
                dir.join(crate::store::DATABASE_FILE).display().to_string(),
            ),
        };
        let snapshot = source.export().await?;
        let before = target_store.export().await?;
        if !before.is_empty() && !args.force {
            return Err(UsageError(format!(
                "{shown} is not empty ({} accounts, {} invitations, {} audit events); \
                 copy into an empty one, or give --force to replace everything it holds",
                before.users.len(),
                before.invites.len(),
                before.audit.len()
            ))
            .into());
        }
        target_store.import(&snapshot).await?;
        let after = target_store.export().await?;
        report(&snapshot, &after, &shown)
    })
}

fn report(source: &Snapshot, target: &Snapshot, shown: &str) -> anyhow::Result<()> {
    let (want, got) = (source.summary(), target.summary());
    println!(
        "{:<32} {:>9} {:>9}  sha256 (source = target)",
        "table", "source", "target"
    );
    let mut bad: Vec<&TableSum> = Vec::new();
    for (w, g) in want.iter().zip(&got) {
        let same = w == g;
        if !same {
            bad.push(w);
        }
        println!(
            "{:<32} {:>9} {:>9}  {}{}",
            w.table,
            w.rows,
            g.rows,
            &w.sha256[..16],
            if same { "" } else { "  DIFFERS" }
        );
    }
    if !bad.is_empty() {
        anyhow::bail!(
            "the copy in {shown} differs from the source in {}; do not use it (run again with --force)",
            bad.iter().map(|t| t.table).collect::<Vec<_>>().join(", ")
        );
    }
    println!("copied to {shown}: every table has the same rows and checksum.");
    println!(
        "Next: stop every gatehouse on the old store, start them with the new one \
         (--database URL, or --data-dir DIR without --database), and keep the old store until all is well."
    );
    Ok(())
}

fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
