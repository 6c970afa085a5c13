//! `arca export [SELECTOR] [-o FILE] [--platform P | --oci]`: writes an
//! artifact's standalone image archive (docker-archive, loadable by
//! `docker load` and `podman load`; of one platform's image with
//! `--platform`; or with `--oci` an OCI archive of the whole layout) by
//! copying blobs from the store, never by an engine export.
//!
//! SELECTOR is an artifact id, a unique id prefix or a crate name (its
//! newest artifact); without one, the crate in the current directory.
//! Without `-o`, the archive goes beside the record as `image.tar` (the
//! record's `archive_file`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Args;

use crate::blobs::BlobStore;
use crate::store::{Store, StoredArtifact};

#[derive(Args)]
pub struct ExportArgs {
    /// Artifact id, id prefix, or crate name (default: the crate in the
    /// current directory).
    selector: Option<String>,
    /// Where to write the archive (default: `image.tar` beside the record).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// The platform's image to export (`linux/arm64`; default: the
    /// engine's) from a multi-platform artifact.
    #[arg(long, conflicts_with = "oci")]
    platform: Option<String>,
    /// Write an OCI archive of every platform's image and the index
    /// (`oci-archive:` for skopeo and podman) instead of a docker-archive.
    #[arg(long)]
    oci: bool,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let home = crate::paths::arca_home()?;
    let store = Store::at(home.join("containers"));
    let platform = crate::platform::Platform::parse_option(args.platform.as_deref(), "--platform")?;
    let artifact = select(&store, args.selector.as_deref())?;
    if args.oci && args.output.is_none() {
        anyhow::bail!(
            "`--oci` needs `-o FILE`: the archive beside the record is the docker-archive."
        );
    }
    if platform.is_some() && args.output.is_none() {
        anyhow::bail!(
            "`--platform` needs `-o FILE`: the archive beside the record is the engine's platform."
        );
    }
    let dest = args.output.unwrap_or_else(|| artifact.archive_path());
    let blobs = BlobStore::at(home.join("blobs"));
    // Held shared, so `arca prune` cannot collect a blob mid-copy.
    let _lock = blobs.lock_shared()?;
    let started = std::time::Instant::now();
    let bytes = if args.oci {
        crate::image::export::export_oci_archive(&blobs, &artifact.dir, &dest)?
    } else {
        // Another platform's archive gets a tag of its own, so loading it
        // never replaces the engine's image under the artifact's tag.
        let engines = crate::image::layout::read_platforms(&artifact.layout_dir())
            .ok()
            .and_then(|images| images.into_iter().next())
            .and_then(|(platform, _)| platform);
        let tag = match platform {
            Some(platform) if Some(platform) != engines => format!(
                "{}-{}",
                artifact.metadata.local_tag,
                platform.name().replace('/', "-")
            ),
            _ => artifact.metadata.local_tag.clone(),
        };
        crate::image::export::export_platform(&blobs, &artifact.dir, &tag, &dest, platform)?
    };
    eprintln!(
        "Exported {} ({}) in {:.2} s.",
        artifact.metadata.artifact_id,
        artifact.metadata.local_tag,
        started.elapsed().as_secs_f64()
    );
    println!("{} ({bytes} bytes)", dest.display());
    Ok(ExitCode::SUCCESS)
}

/// The artifact a SELECTOR names: an id, a unique id prefix, a crate name
/// (its newest artifact) or a crate directory (`.`, a path); without one,
/// the crate in the current directory.
pub(super) fn select(store: &Store, selector: Option<&str>) -> Result<StoredArtifact> {
    match selector {
        Some(selector) if selector == "." || selector.contains('/') => {
            let manifest = crate::workspace::resolve_manifest_path(std::path::Path::new(selector))
                .map_err(|_| anyhow!("`{}` is not a crate directory.", selector.escape_debug()))?;
            let crate_dir = manifest.parent().unwrap_or(&manifest).to_path_buf();
            newest_of(store, &crate_dir)
        }
        Some(selector) => {
            crate::paths::validate_component("artifact selector", selector)?;
            // `select` lists newest first: a crate name picks its newest.
            Ok(store.select(selector)?.remove(0))
        }
        None => {
            let cwd = std::env::current_dir().context("Cannot read the current directory")?;
            let manifest = crate::workspace::resolve_manifest_path(&cwd).map_err(|_| {
                anyhow!(
                    "The current directory is not a crate. Name an artifact: `arca export ID` (see `arca list`)."
                )
            })?;
            let crate_dir = manifest.parent().unwrap_or(&cwd).to_path_buf();
            newest_of(store, &crate_dir)
        }
    }
}

fn newest_of(store: &Store, crate_dir: &std::path::Path) -> Result<StoredArtifact> {
    store.newest_for_crate(crate_dir).ok_or_else(|| {
        anyhow!(
            "No artifact of the crate in {}. Build it first (`arca build rust .`) or name one (`arca list`).",
            crate_dir.display()
        )
    })
}
