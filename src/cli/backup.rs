//! `gatehouse backup --to FILE`: a consistent copy of the database, taken
//! from one read transaction while the server keeps serving (SPEC §7).

use super::admin::{Ctx, Out};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where to write the copy: a file, or a directory (then
    /// DIR/gatehouse.redb, which `--data-dir DIR` opens).
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
}

pub async fn exec(ctx: &Ctx<'_>, args: BackupArgs, out: &mut Out) -> anyhow::Result<()> {
    if let Some(db) = &ctx.config.database {
        // The data is in PostgreSQL: its own tools copy it consistently
        // while every replica keeps serving. Nothing is written here.
        return Err(super::UsageError(format!(
            "gatehouse backup copies the embedded database only; this gatehouse keeps its data in PostgreSQL ({db}). \
             Back it up with PostgreSQL's own tool, which takes a consistent snapshot while the replicas keep serving:\n  \
             pg_dump --format=custom --file={file} '{db}'\n\
             Restore into an empty database, then start gatehouse on it:\n  \
             pg_restore --no-owner --dbname='{db}' {file}\n\
             (docs/scaling.md, \"Backup and restore\")",
            db = db.shown(),
            file = args.to.display(),
        ))
        .into());
    }
    let mut target = if args.to.is_absolute() {
        args.to.clone()
    } else {
        ctx.cwd.join(&args.to)
    };
    if target.is_dir() {
        target = target.join(crate::store::DATABASE_FILE);
    }
    let started = std::time::Instant::now();
    let stats = ctx.admin.backup(&target).await?;
    out.line(format!(
        "backed up {} users, {} sessions and {} other records to {} ({} bytes, {:.1?})",
        stats.users,
        stats.sessions,
        stats.other,
        target.display(),
        std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0),
        started.elapsed()
    ));
    out.line(format!(
        "To restore: stop the server, put this file at <data-dir>/{} (keep the old one aside), start the server.",
        crate::store::DATABASE_FILE
    ));
    Ok(())
}
