//! `arca prune local` and `arca prune cache`: a prune a user can leave on.
//!
//! `local (--hours H | --days D) [--keep N] [--include-current]` removes
//! artifacts older than the age and/or beyond the newest N of each crate,
//! and their local images when an engine is reachable, then the layer
//! store's unreferenced blobs ([`super::prune_blobs`]). The artifact a
//! crate's status points at (its newest) stays unless `--include-current`.
//!
//! `cache (--hours H | --days D)` removes what builds keep for speed and
//! have not used for that long: per-build target caches
//! (`cache/rust/builds/<key>`), the shared cargo home, and the builder
//! images this `ARCA_HOME` built (`arca-builder:<hash>`; images another
//! home or tool made are never touched). Builds mark each as used
//! ([`crate::pipeline::cache_usage`]).
//!
//! Both print what they remove and the bytes freed, in the same decimal
//! units as `arca build`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::cli::build::human_size;
use crate::pipeline::cache_usage;
use crate::store::{Store, StoredArtifact};

#[derive(Subcommand)]
pub enum PruneKind {
    /// Remove local artifacts older than an age and/or beyond the newest N
    /// of each crate (never a crate's current artifact unless asked).
    Local(PruneLocalArgs),
    /// Remove build caches and builder images not used for a given time.
    Cache(AgeArgs),
}

#[derive(Args)]
pub struct PruneLocalArgs {
    /// Remove artifacts created more than this many hours ago.
    #[arg(long, conflicts_with = "days")]
    hours: Option<u64>,
    /// Remove artifacts created more than this many days ago.
    #[arg(long)]
    days: Option<u64>,
    /// Keep the newest N artifacts of each crate (with an age: remove only
    /// artifacts that are both older and beyond the newest N).
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Also remove the artifact a crate's status points at (its newest).
    #[arg(long)]
    include_current: bool,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct AgeArgs {
    /// Remove what was not used for this many hours.
    #[arg(long)]
    hours: Option<u64>,
    /// Remove what was not used for this many days.
    #[arg(long)]
    days: Option<u64>,
}

fn age_ms(hours: Option<u64>, days: Option<u64>) -> Option<u64> {
    match (hours, days) {
        (None, None) => None,
        (hours, days) => Some(
            (hours.unwrap_or(0) + days.unwrap_or(0).saturating_mul(24)).saturating_mul(3_600_000),
        ),
    }
}

pub fn run(kind: PruneKind) -> Result<ExitCode> {
    match kind {
        PruneKind::Local(args) => prune_local(&args),
        PruneKind::Cache(args) => prune_cache(&args),
    }
}

/// What `prune local` removes: the plan over a listing (newest first).
pub fn plan_local(
    artifacts: &[StoredArtifact],
    now_ms: u64,
    age_ms: Option<u64>,
    keep: Option<usize>,
    include_current: bool,
) -> Vec<StoredArtifact> {
    let cutoff = age_ms.map(|age| now_ms.saturating_sub(age));
    let mut seen_per_crate: HashMap<PathBuf, usize> = HashMap::new();
    let mut doomed = Vec::new();
    for artifact in artifacts {
        let crate_dir = PathBuf::from(&artifact.metadata.source_path);
        let rank = seen_per_crate.entry(crate_dir).or_insert(0);
        let position = *rank;
        *rank += 1;
        if position == 0 && !include_current {
            continue; // the artifact the crate's status points at
        }
        let old = cutoff.is_none_or(|cutoff| artifact.metadata.created_at_epoch_ms < cutoff);
        let beyond_keep = keep.is_none_or(|keep| position >= keep);
        if old && beyond_keep {
            doomed.push(artifact.clone());
        }
    }
    doomed
}

fn prune_local(args: &PruneLocalArgs) -> Result<ExitCode> {
    let age = age_ms(args.hours, args.days);
    if age.is_none() && args.keep.is_none() {
        bail!(
            "Say what to remove: `--hours H` or `--days D` (older than that), `--keep N` (beyond the newest N of each crate), or both."
        );
    }
    let store = Store::open_default()?;
    let listing = store.list();
    for warning in &listing.warnings {
        eprintln!("warning: {warning}");
    }
    let now = crate::store::now_epoch_ms();
    let doomed = plan_local(
        &listing.artifacts,
        now,
        age,
        args.keep,
        args.include_current,
    );
    let tags: Vec<&str> = doomed
        .iter()
        .map(|artifact| artifact.metadata.local_tag.as_str())
        .collect();
    if !tags.is_empty() {
        remove_images(&tags);
    }
    let mut freed = 0;
    for artifact in &doomed {
        let bytes = freed_bytes(&artifact.dir);
        store.remove(artifact)?;
        freed += bytes;
        println!(
            "Removed {} ({}, {})",
            artifact.metadata.artifact_id,
            artifact.metadata.local_tag,
            human_size(bytes)
        );
    }
    println!(
        "Pruned {} artifact(s), freed {}.{}",
        doomed.len(),
        human_size(freed),
        if args.include_current {
            ""
        } else {
            " Each crate's current artifact was kept (--include-current removes it too)."
        }
    );
    super::prune_blobs::collect_and_report()?;
    Ok(ExitCode::SUCCESS)
}

fn prune_cache(args: &AgeArgs) -> Result<ExitCode> {
    let age = age_ms(args.hours, args.days).unwrap_or(0);
    let home = crate::paths::arca_home()?;
    let now = crate::store::now_epoch_ms();
    let cutoff = now.saturating_sub(age);
    let unused = cache_usage::unused_since(&home, cutoff);
    let mut freed = 0;
    for dir in &unused.dirs {
        let bytes = freed_bytes(dir);
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {
                freed += bytes;
                println!("Removed {} ({})", dir.display(), human_size(bytes));
            }
            Err(error) => eprintln!("warning: {} not removed: {error}", dir.display()),
        }
    }
    let images = remove_builder_images(&unused.builder_images);
    for (tag, bytes) in &images {
        // The engine's size counts layers other images may share: shown,
        // not added to the bytes freed.
        println!("Removed image {tag} (image size {})", human_size(*bytes));
        cache_usage::forget_builder(&home, tag);
    }
    println!(
        "Pruned {} cache director{} and {} builder image(s); the directories freed {}.",
        unused.dirs.len(),
        if unused.dirs.len() == 1 { "y" } else { "ies" },
        images.len(),
        human_size(freed)
    );
    Ok(ExitCode::SUCCESS)
}

/// Bytes that go when `path` is removed: each regular file once, when all
/// its hard links are inside `path` (cargo's target directories link a
/// binary twice; a layer blob linked from a shared store stays).
fn freed_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut inodes: HashMap<(u64, u64), (u64, u64, u64)> = HashMap::new();
    for file in walk_files(path) {
        let Ok(metadata) = std::fs::symlink_metadata(&file) else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let entry = inodes.entry((metadata.dev(), metadata.ino())).or_insert((
            0,
            metadata.nlink(),
            metadata.len(),
        ));
        entry.0 += 1;
    }
    inodes
        .values()
        .filter(|(seen, links, _)| seen >= links)
        .map(|(_, _, size)| size)
        .sum()
}

fn walk_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(_) => files.push(entry.path()),
                Err(_) => {}
            }
        }
    }
    files
}

fn with_engine<T: Default>(
    what: &str,
    work: impl AsyncFnOnce(&dyn crate::engine::ContainerEngine) -> T,
) -> T {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("note: {what} not removed: {error}");
            return T::default();
        }
    };
    runtime.block_on(async {
        match crate::engine::connect().await {
            Ok(engine) => work(engine.as_ref()).await,
            Err(error) => {
                eprintln!("note: {what} not removed: {error:#}");
                T::default()
            }
        }
    })
}

/// Removes the runtime images with these tags, best effort: an image that is
/// already gone is fine, and without an engine the records are pruned all
/// the same.
fn remove_images(tags: &[&str]) {
    with_engine("local images", async |engine| {
        for tag in tags {
            if let Err(error) = engine.remove_image(tag).await {
                eprintln!("note: image {tag} not removed: {error:#}");
            }
        }
    })
}

/// Removes builder images; returns those removed with their sizes (an
/// image already gone counts, with 0 bytes).
fn remove_builder_images(tags: &[String]) -> Vec<(String, u64)> {
    if tags.is_empty() {
        return Vec::new();
    }
    with_engine("builder images", async |engine| {
        let mut removed = Vec::new();
        for tag in tags {
            let size = match engine.inspect_image(tag).await {
                Ok(Some(facts)) => facts.size.unwrap_or(0),
                Ok(None) => 0,
                Err(error) => {
                    eprintln!("note: image {tag} not removed: {error:#}");
                    continue;
                }
            };
            match engine.remove_image(tag).await {
                Ok(()) => removed.push((tag.clone(), size)),
                Err(error) => eprintln!("note: image {tag} not removed: {error:#}"),
            }
        }
        removed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ArtifactMetadata;

    fn artifact(id: &str, crate_dir: &str, created: u64) -> StoredArtifact {
        let text = format!(
            "schema_version = 3\nartifact_id = \"{id}\"\nremote_tag = \"x-{id}\"\nbuild_fingerprint = \"f\"\nkind = \"rust\"\ncreated_at_epoch_ms = {created}\ncrate_name = \"x\"\ncrate_version = \"0.1.0\"\nbinary_name = \"x\"\nsource_path = \"{crate_dir}\"\nmanifest_path = \"{crate_dir}/Cargo.toml\"\ncargo_profile = \"release\"\ncargo_features = []\nbase_image = \"debian:12\"\nruntime = \"docker\"\nlocal_tag = \"arca-local:x-{id}\"\narchive_file = \"image.tar\"\n"
        );
        let metadata: ArtifactMetadata = toml::from_str(&text).expect("metadata");
        StoredArtifact {
            dir: PathBuf::from(format!("/store/{id}")),
            metadata,
        }
    }

    fn ids(artifacts: &[StoredArtifact]) -> Vec<&str> {
        artifacts
            .iter()
            .map(|artifact| artifact.metadata.artifact_id.as_str())
            .collect()
    }

    #[test]
    fn keep_counts_per_crate_and_the_current_artifact_stays_unless_asked() {
        // Newest first, as the store lists them.
        let listing = [
            artifact("a3", "/w/a", 300),
            artifact("b2", "/w/b", 250),
            artifact("a2", "/w/a", 200),
            artifact("a1", "/w/a", 100),
            artifact("b1", "/w/b", 50),
        ];
        assert_eq!(
            ids(&plan_local(&listing, 1000, None, Some(2), false)),
            ["a1"]
        );
        assert_eq!(
            ids(&plan_local(&listing, 1000, None, Some(0), false)),
            ["a2", "a1", "b1"]
        );
        assert_eq!(
            ids(&plan_local(&listing, 1000, None, Some(0), true)),
            ["a3", "b2", "a2", "a1", "b1"]
        );
        // `--hours 0`: everything is old, but each crate's current stays.
        assert_eq!(
            ids(&plan_local(&listing, 1000, Some(0), None, false)),
            ["a2", "a1", "b1"]
        );
        // Age and keep together: older than 150 ms ago and beyond the newest 1.
        assert_eq!(
            ids(&plan_local(&listing, 1000, Some(850), Some(1), false)),
            ["a1", "b1"]
        );
    }

    #[test]
    fn freed_bytes_skip_files_linked_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("artifact");
        std::fs::create_dir_all(&artifact).unwrap();
        std::fs::write(artifact.join("own"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("blob"), vec![0u8; 5000]).unwrap();
        std::fs::hard_link(dir.path().join("blob"), artifact.join("linked")).unwrap();
        assert_eq!(freed_bytes(&artifact), 1000);
        // Both links inside: the file goes, counted once.
        std::fs::write(artifact.join("binary"), vec![0u8; 300]).unwrap();
        std::fs::hard_link(artifact.join("binary"), artifact.join("binary-hash")).unwrap();
        assert_eq!(freed_bytes(&artifact), 1300);
    }
}
