//! `arca prune local (--hours H | --days D)`: removes artifacts older than
//! the given age from the store.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::store::Store;

#[derive(Subcommand)]
pub enum PruneKind {
    /// Remove local artifacts older than the given age.
    Local(PruneArgs),
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct PruneArgs {
    /// Remove artifacts created more than this many hours ago.
    #[arg(long)]
    hours: Option<u64>,
    /// Remove artifacts created more than this many days ago.
    #[arg(long)]
    days: Option<u64>,
}

pub fn run(kind: PruneKind) -> Result<ExitCode> {
    let PruneKind::Local(args) = kind;
    let hours = args.hours.unwrap_or(0) + args.days.unwrap_or(0) * 24;
    let cutoff = crate::store::now_epoch_ms().saturating_sub(hours.saturating_mul(3_600_000));
    let store = Store::open_default()?;
    let listing = store.list();
    for warning in &listing.warnings {
        eprintln!("warning: {warning}");
    }
    let mut removed = 0;
    for artifact in listing
        .artifacts
        .iter()
        .filter(|artifact| artifact.metadata.created_at_epoch_ms < cutoff)
    {
        store.remove(artifact)?;
        println!(
            "Removed {} ({})",
            artifact.metadata.artifact_id, artifact.metadata.local_tag
        );
        removed += 1;
    }
    println!("Pruned {removed} artifact(s) older than {hours} hour(s).");
    Ok(ExitCode::SUCCESS)
}
