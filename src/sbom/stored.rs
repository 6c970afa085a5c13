//! An artifact's stored SBOM and provenance, read back from its layout:
//! the artifacts referring to its image, each document checked against
//! its digest before it is handed out.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{provenance, spdx};
use crate::blobs::Digest;
use crate::image::layout::{self, LAYOUT_DIR};
use crate::image::referrer::Referrer;
use crate::platform::Platform;

/// The two documents an artifact can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sbom,
    Provenance,
}

impl Kind {
    pub fn artifact_type(self) -> &'static str {
        match self {
            Kind::Sbom => spdx::MEDIA_TYPE,
            Kind::Provenance => provenance::MEDIA_TYPE,
        }
    }
}

/// The artifact's referrer of this kind for the engine's image, if it has
/// one.
pub fn find(artifact_dir: &Path, kind: Kind) -> Result<Option<Referrer>> {
    find_for(artifact_dir, kind, None)
}

/// The artifact's referrer of this kind for `platform`'s image (`None`:
/// the engine's, the one the layout reads back first); a platform the
/// artifact has no image for is refused naming those it has.
pub fn find_for(
    artifact_dir: &Path,
    kind: Kind,
    platform: Option<Platform>,
) -> Result<Option<Referrer>> {
    let dir = artifact_dir.join(LAYOUT_DIR);
    if !dir.join("index.json").is_file() {
        return Ok(None);
    }
    let images = layout::read_platforms(&dir)?;
    let subject = match platform {
        None => images
            .first()
            .map(|(_, image)| image.manifest.digest.clone()),
        Some(wanted) => {
            let found = images
                .iter()
                .find(|(platform, _)| *platform == Some(wanted))
                .map(|(_, image)| image.manifest.digest.clone());
            if found.is_none() {
                let names: Vec<String> = images
                    .iter()
                    .map(|(platform, _)| {
                        platform.map_or("an unknown platform".to_owned(), |p| p.to_string())
                    })
                    .collect();
                bail!(
                    "The artifact has no image for {wanted}: it was built for {}.",
                    names.join(", ")
                );
            }
            found
        }
    };
    Ok(layout::read_referrers(&dir)?.into_iter().find(|referrer| {
        referrer.artifact_type == kind.artifact_type()
            && Some(&referrer.subject) == subject.as_ref()
    }))
}

/// The document's bytes, as stored (`None`: the artifact has none).
pub fn read(artifact_dir: &Path, kind: Kind) -> Result<Option<Vec<u8>>> {
    read_for(artifact_dir, kind, None)
}

/// [`read`] of `platform`'s image (see [`find_for`]).
pub fn read_for(
    artifact_dir: &Path,
    kind: Kind,
    platform: Option<Platform>,
) -> Result<Option<Vec<u8>>> {
    let Some(referrer) = find_for(artifact_dir, kind, platform)? else {
        return Ok(None);
    };
    let path = layout::blob_path(&artifact_dir.join(LAYOUT_DIR), &referrer.content.digest);
    let bytes = std::fs::read(&path).with_context(|| format!("Cannot read {}", path.display()))?;
    if Digest::of(&bytes) != referrer.content.digest {
        bail!(
            "{} does not match its digest: the store is damaged; rebuild the image (`arca build rust --force`).",
            path.display()
        );
    }
    Ok(Some(bytes))
}

/// An artifact's SBOM in brief, as the status object's `sbom` (additive):
/// its blob's digest and how many packages it lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub digest: String,
    pub packages: usize,
}

/// The artifact's SBOM digest and how many packages it lists (`None`: it
/// has none, or it cannot be read).
pub fn summary(artifact_dir: &Path) -> Option<Summary> {
    let bytes = read(artifact_dir, Kind::Sbom).ok()??;
    Some(Summary {
        digest: Digest::of(&bytes).to_string(),
        packages: spdx::parse(&bytes).ok()?.packages.len(),
    })
}
