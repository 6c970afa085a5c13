//! The artifact store: `$ARCA_HOME/containers/<id>/metadata.toml` (the
//! original CLI's schema 3) with the image beside it: an OCI image layout
//! `image/` whose blobs are hard links into the layer store, and
//! `image.tar` (the record's `archive_file`) when a standalone archive was
//! asked for; records of the original CLI have only `image.tar`.
//!
//! **An artifact appears only complete:** [`Store::create`] stages every file
//! in a hidden temporary directory and renames it into place last. Records
//! the store cannot read (corrupt, foreign, half-written by another tool) are
//! skipped with a warning, never fatal.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::paths;

/// The record format this store reads and writes.
pub const CURRENT_SCHEMA_VERSION: u32 = 3;
/// The record's file name inside an artifact directory.
pub const METADATA_FILE: &str = "metadata.toml";
/// The image archive's file name inside an artifact directory.
pub const ARCHIVE_FILE: &str = "image.tar";
/// The OCI image layout's directory inside an artifact directory.
pub const LAYOUT_DIR: &str = "image";
/// Prefix of image labels.
pub const LABEL_PREFIX: &str = "io.khoek.arca";
const ID_LENGTH: usize = 8;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const STAGING_PREFIX: &str = ".staging-";

/// One artifact record, field for field the original's schema 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMetadata {
    pub schema_version: u32,
    pub artifact_id: String,
    pub remote_tag: String,
    pub build_fingerprint: String,
    pub kind: String,
    pub created_at_epoch_ms: u64,
    pub crate_name: String,
    pub crate_version: String,
    pub binary_name: String,
    pub source_path: String,
    pub manifest_path: String,
    pub cargo_profile: String,
    pub cargo_features: Vec<String>,
    pub base_image: String,
    pub runtime: String,
    pub local_tag: String,
    pub archive_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at_epoch_ms: Option<u64>,
}

impl ArtifactMetadata {
    /// The `io.khoek.arca.*` labels the runtime image carries.
    pub fn image_labels(&self) -> Vec<(String, String)> {
        [
            ("schema-version", self.schema_version.to_string()),
            ("artifact-id", self.artifact_id.clone()),
            ("remote-tag", self.remote_tag.clone()),
            ("build-fingerprint", self.build_fingerprint.clone()),
            ("created-at-epoch-ms", self.created_at_epoch_ms.to_string()),
            ("crate-name", self.crate_name.clone()),
            ("binary-name", self.binary_name.clone()),
            ("cargo-profile", self.cargo_profile.clone()),
            ("cargo-features", self.cargo_features.join(",")),
            ("base-image", self.base_image.clone()),
        ]
        .into_iter()
        .map(|(key, value)| (format!("{LABEL_PREFIX}.{key}"), value))
        .collect()
    }
}

/// A record read from the store, with where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub dir: PathBuf,
    pub metadata: ArtifactMetadata,
}

impl StoredArtifact {
    /// Where the standalone archive is (or would be) written: `image.tar`
    /// (the record's `archive_file`). Arca writes it only on demand
    /// (`--archive`, `arca export`); the original CLI always did.
    pub fn archive_path(&self) -> PathBuf {
        self.dir.join(&self.metadata.archive_file)
    }

    /// The artifact's OCI image layout (`image/`, linking the layer store);
    /// absent in records made by the original CLI.
    pub fn layout_dir(&self) -> PathBuf {
        self.dir.join(LAYOUT_DIR)
    }

    /// Whether the artifact still has its image: a layout or an archive.
    pub fn has_image(&self) -> bool {
        self.layout_dir().join("index.json").is_file() || self.archive_path().is_file()
    }
}

/// The artifact store under one root directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What reading the whole store found: the records, newest first, and a
/// warning for each directory that was skipped.
#[derive(Debug, Default)]
pub struct Listing {
    pub artifacts: Vec<StoredArtifact>,
    pub warnings: Vec<String>,
}

impl Store {
    /// The store at `$ARCA_HOME/containers`.
    pub fn open_default() -> Result<Self> {
        Ok(Self::at(paths::containers_dir()?))
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every readable record, newest first. A missing store is empty.
    pub fn list(&self) -> Listing {
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return listing,
            Err(error) => {
                listing.warnings.push(format!(
                    "Cannot read the artifact store {}: {error}",
                    self.root.display()
                ));
                return listing;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            match read_record(&entry.path()) {
                Ok(artifact) => listing.artifacts.push(artifact),
                Err(error) => listing.warnings.push(format!(
                    "Skipping {}: {error:#}",
                    entry.path().join(METADATA_FILE).display()
                )),
            }
        }
        listing.artifacts.sort_by(|left, right| {
            right
                .metadata
                .created_at_epoch_ms
                .cmp(&left.metadata.created_at_epoch_ms)
                .then_with(|| right.metadata.artifact_id.cmp(&left.metadata.artifact_id))
        });
        listing
    }

    /// The newest artifact built from the crate at `crate_dir`.
    pub fn newest_for_crate(&self, crate_dir: &Path) -> Option<StoredArtifact> {
        self.list()
            .artifacts
            .into_iter()
            .find(|artifact| paths::same_path(Path::new(&artifact.metadata.source_path), crate_dir))
    }

    /// Artifacts matching a selector: an exact id, a unique id prefix, or a
    /// crate name.
    pub fn select(&self, selector: &str) -> Result<Vec<StoredArtifact>> {
        let artifacts = self.list().artifacts;
        if let Some(exact) = artifacts
            .iter()
            .find(|artifact| artifact.metadata.artifact_id == selector)
        {
            return Ok(vec![exact.clone()]);
        }
        let by_prefix: Vec<_> = artifacts
            .iter()
            .filter(|artifact| artifact.metadata.artifact_id.starts_with(selector))
            .cloned()
            .collect();
        if by_prefix.len() > 1 {
            bail!(
                "`{selector}` matches several artifacts ({}). Give more of the id.",
                by_prefix
                    .iter()
                    .map(|artifact| artifact.metadata.artifact_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if by_prefix.len() == 1 {
            return Ok(by_prefix);
        }
        let by_crate: Vec<_> = artifacts
            .into_iter()
            .filter(|artifact| artifact.metadata.crate_name == selector)
            .collect();
        if by_crate.is_empty() {
            bail!("No artifact matches `{selector}`. Run `arca list` to see the artifacts.");
        }
        Ok(by_crate)
    }

    /// A fresh, unused artifact id: 8 characters of `[a-z0-9]`.
    pub fn new_artifact_id(&self) -> String {
        let mut rng = rand::rng();
        loop {
            let id: String = (0..ID_LENGTH)
                .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
                .collect();
            if !self.root.join(&id).exists() {
                return id;
            }
        }
    }

    /// Starts a new artifact: a staging directory where the archive and
    /// other files are written before [`PendingArtifact::commit`].
    pub fn create(&self, artifact_id: &str) -> Result<PendingArtifact> {
        paths::validate_component("artifact id", artifact_id)?;
        fs::create_dir_all(&self.root).with_context(|| {
            format!(
                "Failed to create the artifact store {}",
                self.root.display()
            )
        })?;
        let staging = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{artifact_id}-"))
            .tempdir_in(&self.root)
            .with_context(|| {
                format!(
                    "Failed to create a staging directory in {}",
                    self.root.display()
                )
            })?;
        Ok(PendingArtifact {
            final_dir: self.root.join(artifact_id),
            staging,
        })
    }

    /// Removes an artifact's directory.
    pub fn remove(&self, artifact: &StoredArtifact) -> Result<()> {
        fs::remove_dir_all(&artifact.dir)
            .with_context(|| format!("Failed to remove {}", artifact.dir.display()))
    }
}

/// An artifact being written. Dropping it without [`commit`](Self::commit)
/// deletes everything staged.
pub struct PendingArtifact {
    final_dir: PathBuf,
    staging: tempfile::TempDir,
}

impl PendingArtifact {
    /// Where to write files that belong beside the record.
    pub fn staging_dir(&self) -> &Path {
        self.staging.path()
    }

    /// Writes the record and moves the artifact into the store in one
    /// rename.
    pub fn commit(self, metadata: &ArtifactMetadata) -> Result<StoredArtifact> {
        let text = toml::to_string(metadata).context("Failed to serialize the artifact record")?;
        let record = self.staging.path().join(METADATA_FILE);
        fs::write(&record, text)
            .with_context(|| format!("Failed to write {}", record.display()))?;
        let staging = self.staging.keep();
        if let Err(error) = fs::rename(&staging, &self.final_dir) {
            let _ = fs::remove_dir_all(&staging);
            return Err(error).with_context(|| {
                format!(
                    "Failed to move the artifact into {}",
                    self.final_dir.display()
                )
            });
        }
        Ok(StoredArtifact {
            dir: self.final_dir,
            metadata: metadata.clone(),
        })
    }
}

fn read_record(dir: &Path) -> Result<StoredArtifact> {
    let path = dir.join(METADATA_FILE);
    let text = crate::fsread::read_to_string(&path, crate::fsread::Kind::StoreRecord)
        .context("cannot read the record")?;
    let metadata: ArtifactMetadata =
        toml::from_str(&text).context("not an Arca artifact record")?;
    if metadata.schema_version != CURRENT_SCHEMA_VERSION {
        bail!(
            "schema_version {} is not {CURRENT_SCHEMA_VERSION}",
            metadata.schema_version
        );
    }
    let dir_name = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    if dir_name.as_deref() != Some(metadata.artifact_id.as_str()) {
        bail!(
            "its artifact_id `{}` does not match its directory",
            metadata.artifact_id
        );
    }
    paths::validate_component("archive file name", &metadata.archive_file)?;
    Ok(StoredArtifact {
        dir: dir.to_path_buf(),
        metadata,
    })
}

/// Milliseconds since the Unix epoch, now.
pub fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// A schema-3 record for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) use tests::sample as sample_metadata;

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(id: &str, created: u64, source: &str) -> ArtifactMetadata {
        ArtifactMetadata {
            schema_version: 3,
            artifact_id: id.into(),
            remote_tag: format!("demo-{id}"),
            build_fingerprint: "f".repeat(64),
            kind: "rust".into(),
            created_at_epoch_ms: created,
            crate_name: "demo".into(),
            crate_version: "0.1.0".into(),
            binary_name: "demo".into(),
            source_path: source.into(),
            manifest_path: format!("{source}/Cargo.toml"),
            cargo_profile: "release".into(),
            cargo_features: vec!["cli".into(), "http".into()],
            base_image: "debian:12".into(),
            runtime: "docker".into(),
            local_tag: format!("arca-local:demo-{id}"),
            archive_file: "image.tar".into(),
            uploaded_ref: None,
            uploaded_at_epoch_ms: None,
        }
    }

    #[test]
    fn records_round_trip_and_list_newest_first() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::at(root.path());
        for (id, created) in [("aaaaaaaa", 1), ("bbbbbbbb", 3), ("cccccccc", 2)] {
            let pending = store.create(id).unwrap();
            fs::write(pending.staging_dir().join(ARCHIVE_FILE), b"tar").unwrap();
            pending.commit(&sample(id, created, "/src/demo")).unwrap();
        }
        let listing = store.list();
        assert!(listing.warnings.is_empty());
        let ids: Vec<_> = listing
            .artifacts
            .iter()
            .map(|artifact| artifact.metadata.artifact_id.as_str())
            .collect();
        assert_eq!(ids, ["bbbbbbbb", "cccccccc", "aaaaaaaa"]);
        assert_eq!(
            listing.artifacts[1].metadata,
            sample("cccccccc", 2, "/src/demo")
        );
        let newest = store.newest_for_crate(Path::new("/src/demo")).unwrap();
        assert_eq!(newest.metadata.artifact_id, "bbbbbbbb");
        assert!(store.newest_for_crate(Path::new("/src/other")).is_none());
    }

    #[test]
    fn the_original_record_format_is_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("k3j9x0ab");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(METADATA_FILE),
            r#"schema_version = 3
artifact_id = "k3j9x0ab"
remote_tag = "demo-k3j9x0ab"
build_fingerprint = "abc"
kind = "rust"
created_at_epoch_ms = 1732400000000
crate_name = "demo"
crate_version = "0.1.0"
binary_name = "demo"
source_path = "/src/demo"
manifest_path = "/src/demo/Cargo.toml"
cargo_profile = "release"
cargo_features = []
base_image = "ubuntu:24.04"
runtime = "docker"
local_tag = "arca-local:demo-k3j9x0ab"
archive_file = "image.tar"
uploaded_ref = "registry.example/demo:k3j9x0ab"
uploaded_at_epoch_ms = 1732400001000
"#,
        )
        .unwrap();
        let listing = Store::at(root.path()).list();
        assert_eq!(listing.artifacts.len(), 1, "{:?}", listing.warnings);
        let metadata = &listing.artifacts[0].metadata;
        assert_eq!(metadata.uploaded_at_epoch_ms, Some(1732400001000));
        assert_eq!(metadata.created_at_epoch_ms, 1732400000000);
    }

    #[test]
    fn corrupt_and_foreign_records_are_skipped_with_a_warning() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::at(root.path());
        store
            .create("goodgood")
            .unwrap()
            .commit(&sample("goodgood", 1, "/src/demo"))
            .unwrap();
        for (name, text) in [
            ("corrupt1", "schema_version = 3\nartifact_id = "),
            ("foreign1", "name = \"something else\"\n"),
            (
                "oldschem",
                &toml::to_string(&ArtifactMetadata {
                    schema_version: 2,
                    ..sample("oldschem", 1, "/src/demo")
                })
                .unwrap(),
            ),
        ] {
            fs::create_dir_all(root.path().join(name)).unwrap();
            fs::write(root.path().join(name).join(METADATA_FILE), text).unwrap();
        }
        fs::create_dir_all(root.path().join("nofile00")).unwrap();
        let listing = store.list();
        assert_eq!(listing.artifacts.len(), 1);
        assert_eq!(listing.warnings.len(), 4, "{:?}", listing.warnings);
        assert!(
            listing
                .warnings
                .iter()
                .any(|w| w.contains("schema_version 2"))
        );
    }

    #[test]
    fn an_uncommitted_artifact_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::at(root.path());
        let pending = store.create("abcdefgh").unwrap();
        fs::write(pending.staging_dir().join(ARCHIVE_FILE), b"half").unwrap();
        drop(pending);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn selectors_match_id_prefix_and_crate() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::at(root.path());
        for id in ["ab12cd34", "ab99zz00"] {
            store
                .create(id)
                .unwrap()
                .commit(&sample(id, 1, "/s"))
                .unwrap();
        }
        assert_eq!(store.select("ab12cd34").unwrap().len(), 1);
        assert_eq!(store.select("ab1").unwrap().len(), 1);
        assert!(
            store
                .select("ab")
                .unwrap_err()
                .to_string()
                .contains("several")
        );
        assert_eq!(store.select("demo").unwrap().len(), 2);
        assert!(store.select("zzz").is_err());
    }

    #[test]
    fn ids_are_eight_lowercase_alphanumerics() {
        let id = Store::at("/nonexistent").new_artifact_id();
        assert_eq!(id.len(), 8);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }

    #[test]
    fn labels_join_features_with_commas() {
        let labels = sample("ab12cd34", 5, "/s").image_labels();
        assert!(labels.contains(&(
            "io.khoek.arca.cargo-features".to_owned(),
            "cli,http".to_owned()
        )));
        assert_eq!(labels.len(), 10);
    }
}
