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
