//! `arca list [--json]`: the artifacts in the store, newest first.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::store::Store;

#[derive(Args)]
pub struct ListArgs {
    /// Print the artifact records as a JSON array.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ListArgs) -> Result<ExitCode> {
    let store = Store::open_default()?;
    let listing = store.list();
    for warning in &listing.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        let records: Vec<_> = listing.artifacts.iter().map(|a| &a.metadata).collect();
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    if listing.artifacts.is_empty() {
        println!("No artifacts in {}.", store.root().display());
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::store::now_epoch_ms();
    println!(
        "{:<8}  {:<20}  {:<10}  {:<8}  {:<10}  TAG",
        "ID", "CRATE", "VERSION", "PROFILE", "AGE"
    );
    for artifact in &listing.artifacts {
        let metadata = &artifact.metadata;
        println!(
            "{:<8}  {:<20}  {:<10}  {:<8}  {:<10}  {}",
            metadata.artifact_id,
            metadata.crate_name,
            metadata.crate_version,
            metadata.cargo_profile,
            human_age(now.saturating_sub(metadata.created_at_epoch_ms)),
            metadata.local_tag
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A short age like `5m`, `3h`, `2d`.
pub fn human_age(elapsed_ms: u64) -> String {
    let seconds = elapsed_ms / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}
