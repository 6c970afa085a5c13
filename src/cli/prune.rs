//! `arca prune local (--hours H | --days D)`: removes artifacts older than
//! the given age from the store, and their local images when an engine is
//! reachable (without one, the records still go and a note says so); then
//! the layer store's unreferenced blobs ([`super::prune_blobs`]).

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
    // Saturating: an age past the epoch keeps everything (never wraps to
    // a small one that deletes everything).
    let hours = args
        .hours
        .unwrap_or(0)
        .saturating_add(args.days.unwrap_or(0).saturating_mul(24));
    let cutoff = crate::store::now_epoch_ms().saturating_sub(hours.saturating_mul(3_600_000));
    let store = Store::open_default()?;
    let listing = store.list();
    for warning in &listing.warnings {
        eprintln!("warning: {warning}");
    }
    let old: Vec<_> = listing
        .artifacts
        .iter()
        .filter(|artifact| artifact.metadata.created_at_epoch_ms < cutoff)
        .collect();
    let tags: Vec<&str> = old
        .iter()
        .map(|artifact| artifact.metadata.local_tag.as_str())
        .collect();
    if !tags.is_empty() {
        remove_images(&tags);
    }
    for artifact in &old {
        store.remove(artifact)?;
        println!(
            "Removed {} ({})",
            artifact.metadata.artifact_id, artifact.metadata.local_tag
        );
    }
    println!(
        "Pruned {} artifact(s) older than {hours} hour(s).",
        old.len()
    );
    super::prune_blobs::collect_and_report()?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the runtime images with these tags, best effort: an image that is
/// already gone is fine, and without an engine the records are pruned all
/// the same.
fn remove_images(tags: &[&str]) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("note: images not removed: {error}");
            return;
        }
    };
    runtime.block_on(async {
        let engine = match crate::engine::connect().await {
            Ok(engine) => engine,
            Err(error) => {
                eprintln!("note: local images not removed: {error:#}");
                return;
            }
        };
        for tag in tags {
            if let Err(error) = engine.remove_image(tag).await {
                eprintln!("note: image {tag} not removed: {error:#}");
            }
        }
    });
}
