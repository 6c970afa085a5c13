//! Base images in the store: imported once per image id from an engine's
//! image archive (`docker save` format), verified by digest, and recorded
//! in `$ARCA_HOME/bases/<image id hex>.json`.
//!
//! A record says which blobs make the base (config, layers in order), the
//! references it was imported under, and what [`CaBundle`] layer the
//! runtime image needs on it. A record whose blobs are gone (collected by
//! `arca prune`, deleted by hand, found corrupt) is simply imported again.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::BlobRef;
use crate::blobs::{BlobStore, Check, Digest};

/// Archive members up to this size are kept in memory while an archive is
/// read (configs, manifests); larger ones stream into the store.
const SMALL_MEMBER: u64 = 1 << 20;
/// At most this many bytes of small members are held at once (an engine's
/// archive has a few configs and manifests).
const SMALL_TOTAL_MAX: u64 = 64 << 20;
/// At most this many members are read from an engine's archive (one per
/// layer file and a few more); a stream of millions of tiny entries is
/// refused instead of held.
const MEMBERS_MAX: usize = 100_000;

/// Whether the runtime image needs a CA-bundle layer on this base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CaBundle {
    /// The base has `/etc/ssl/certs/ca-certificates.crt`.
    InBase,
    /// This layer adds one.
    Layer { layer: BlobRef },
    /// The base has none and none could be installed (no package manager
    /// or no network); images on it have no CA bundle.
    Unavailable,
}

/// A base image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRecord {
    /// The engine's image id: the digest of the config.
    pub image_id: Digest,
    pub config: BlobRef,
    /// Bottom to top; uncompressed, so each digest is the layer's diff id.
    pub layers: Vec<BlobRef>,
    /// The references it was imported or used under.
    pub references: Vec<String>,
    pub imported_at_epoch_ms: u64,
    #[serde(default)]
    pub ca_bundle: Option<CaBundle>,
}

impl BaseRecord {
    /// Every blob the record names.
    pub fn blobs(&self) -> Vec<&BlobRef> {
        let mut blobs: Vec<&BlobRef> = vec![&self.config];
        blobs.extend(self.layers.iter());
        if let Some(CaBundle::Layer { layer }) = &self.ca_bundle {
            blobs.push(layer);
        }
        blobs
    }

    /// Whether all its blobs are present and intact ([`BlobStore::check`]:
    /// a `stat` each unless one was changed); a corrupt blob is removed.
    pub fn complete(&self, blobs: &BlobStore) -> Result<bool> {
        let mut complete = true;
        for blob in self.blobs() {
            match blobs.check(&blob.digest, Some(blob.size))? {
                Check::Good => {}
                Check::Missing => complete = false,
                Check::Discarded => {
                    tracing::warn!(
                        "base blob {} was corrupt and has been discarded",
                        blob.digest
                    );
                    complete = false;
                }
            }
        }
        Ok(complete)
    }
}

/// The base records under `$ARCA_HOME/bases`.
#[derive(Debug, Clone)]
pub struct Bases {
    dir: PathBuf,
}

impl Bases {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, image_id: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", image_id.hex()))
    }

    /// The record of this image id, if any (an unreadable one counts as
    /// none: it is rewritten by the next import).
    pub fn load(&self, image_id: &Digest) -> Option<BaseRecord> {
        let text = fs::read(self.path(image_id)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Every readable record.
    pub fn list(&self) -> Vec<BaseRecord> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|entry| fs::read(entry.path()).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect()
    }

    /// The most recently imported record known under `reference`.
    pub fn find_by_reference(&self, reference: &str) -> Option<BaseRecord> {
        self.list()
            .into_iter()
            .filter(|record| record.references.iter().any(|known| known == reference))
            .max_by_key(|record| record.imported_at_epoch_ms)
    }

    /// Writes a record atomically (temp file, fsync, rename).
    pub fn save(&self, record: &BaseRecord) -> Result<()> {
        let failed = |error: std::io::Error| {
            let why = crate::blobs::why_unwritable(&error, &self.dir);
            anyhow::Error::new(error).context(format!(
                "Failed to write a base record in {}: {why}",
                self.dir.display()
            ))
        };
        fs::create_dir_all(&self.dir).map_err(failed)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir).map_err(failed)?;
        let bytes = serde_json::to_vec_pretty(record).context("Failed to encode a base record")?;
        file.write_all(&bytes)
            .and_then(|()| file.as_file().sync_all())
            .map_err(failed)?;
        file.persist(self.path(&record.image_id))
            .map_err(|error| anyhow!(error.error))
            .context("Failed to save a base record")?;
        Ok(())
    }

    /// Removes a record (best effort).
    pub fn remove(&self, image_id: &Digest) {
        let _ = fs::remove_file(self.path(image_id));
    }

    /// Holds the import lock of one base, so two builds sharing a base
    /// import it once: the second waits, then finds the record.
    pub fn lock_import(&self, image_id: &Digest) -> Result<ImportLock> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("Failed to create {}", self.dir.display()))?;
        let path = self.dir.join(format!("{}.lock", image_id.hex()));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("Failed to open {}", path.display()))?;
        loop {
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(ImportLock { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error).context("Failed to lock a base import");
            }
        }
    }
}

/// A held base import lock.
pub struct ImportLock {
    _file: File,
}

/// Blobs an import wrote that were not in the store before, so a failed
/// import can take them back.
pub type CreatedBlobs = std::sync::Arc<std::sync::Mutex<Vec<Digest>>>;

/// Takes back the blobs a failed import or fetch wrote (those no artifact
/// links by now), and forgets them.
pub fn take_back(blobs: &BlobStore, created: &CreatedBlobs) {
    for digest in std::mem::take(&mut *lock(created)) {
        blobs.discard_if_unlinked(&digest);
    }
}

/// Reads an image archive (`docker save` of one image, either Docker's
/// classic layout or the OCI layout newer engines write) into the store:
/// its config and layers, checked against `image_id` and the config's diff
/// ids. Returns the config and layers.
pub fn import(
    blobs: &BlobStore,
    archive: impl Read,
    image_id: &Digest,
    created: &CreatedBlobs,
) -> Result<(BlobRef, Vec<BlobRef>)> {
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut large: HashMap<String, BlobRef> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut small_total = 0u64;
    let mut archive = tar::Archive::new(archive);
    for (index, entry) in archive
        .entries()
        .context("The engine's image archive is unreadable")?
        .enumerate()
    {
        if index >= MEMBERS_MAX {
            bail!(
                "The engine's image archive has more than {MEMBERS_MAX} members, which no image archive needs; nothing was stored."
            );
        }
        let mut entry = entry.context("The engine's image archive is unreadable")?;
        let path = normalize(&entry.path()?.to_string_lossy());
        match entry.header().entry_type() {
            tar::EntryType::Regular => {
                if entry.size() <= SMALL_MEMBER {
                    small_total += entry.size();
                    if small_total > SMALL_TOTAL_MAX {
                        bail!(
                            "The engine's image archive has more than {} MiB of small files, which no image archive needs; nothing was stored.",
                            SMALL_TOTAL_MAX >> 20
                        );
                    }
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    entry
                        .read_to_end(&mut bytes)
                        .context("The engine's image archive is unreadable")?;
                    small.insert(path, bytes);
                } else {
                    let written = blobs.put(&mut entry)?;
                    if written.created {
                        lock(created).push(written.digest.clone());
                    }
                    large.insert(path, written.into());
                }
            }
            tar::EntryType::Symlink => {
                if let Some(target) = entry.link_name()? {
                    let parent = Path::new(&path).parent().unwrap_or(Path::new(""));
                    let target = normalize(&parent.join(target).to_string_lossy());
                    links.insert(path, target);
                }
            }
            _ => {}
        }
    }
    let resolve = |path: &str| {
        let mut path = normalize(path);
        for _ in 0..8 {
            match links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        path
    };
    let manifest = small
        .get("manifest.json")
        .ok_or_else(|| anyhow!("The engine's image archive has no manifest.json"))?;
    let manifest: serde_json::Value =
        serde_json::from_slice(manifest).context("The archive's manifest.json is not JSON")?;
    let entry = manifest
        .as_array()
        .and_then(|entries| entries.first())
        .ok_or_else(|| anyhow!("The archive's manifest.json lists no image"))?;
    let config_path = resolve(
        entry["Config"]
            .as_str()
            .ok_or_else(|| anyhow!("The archive's manifest.json names no config"))?,
    );
    let put = |path: &str| -> Result<BlobRef> {
        if let Some(blob) = large.get(path) {
            return Ok(blob.clone());
        }
        let bytes = small
            .get(path)
            .ok_or_else(|| anyhow!("The engine's image archive lacks {path}"))?;
        let written = blobs.put_bytes(bytes)?;
        if written.created {
            lock(created).push(written.digest.clone());
        }
        Ok(written.into())
    };
    let config = put(&config_path)?;
    if config.digest != *image_id {
        bail!(
            "The engine exported a config with digest {} for image {image_id}; nothing was stored. Try again; if it persists, remove and pull the base image again.",
            config.digest
        );
    }
    let config_bytes = blobs.read(&config.digest)?;
    let diff_ids = super::config::diff_ids(&config_bytes)?;
    let layer_paths = entry["Layers"]
        .as_array()
        .ok_or_else(|| anyhow!("The archive's manifest.json lists no layers"))?;
    if layer_paths.len() != diff_ids.len() {
        bail!(
            "The engine's archive of {image_id} has {} layers but its config names {}",
            layer_paths.len(),
            diff_ids.len()
        );
    }
    let mut layers = Vec::with_capacity(layer_paths.len());
    for (path, diff_id) in layer_paths.iter().zip(&diff_ids) {
        let path = resolve(
            path.as_str()
                .ok_or_else(|| anyhow!("The archive's manifest.json has a bad layer path"))?,
        );
        let layer = put(&path)?;
        if layer.digest != *diff_id {
            bail!(
                "Layer {path} of the engine's archive has digest {} but the image config says {diff_id} (compressed layers are not supported); nothing was stored.",
                layer.digest
            );
        }
        layers.push(layer);
    }
    // Large members the manifest does not name (another image's layers,
    // padding) are not kept.
    for (path, blob) in &large {
        let named =
            blob.digest == config.digest || layers.iter().any(|layer| layer.digest == blob.digest);
        if !named {
            tracing::debug!(
                "the engine's archive member {path} is not part of the image; not kept"
            );
            let mut created = lock(created);
            if let Some(at) = created.iter().position(|digest| *digest == blob.digest) {
                created.remove(at);
                blobs.discard_if_unlinked(&blob.digest);
            }
        }
    }
    Ok((config, layers))
}

fn lock(created: &CreatedBlobs) -> std::sync::MutexGuard<'_, Vec<Digest>> {
    created
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `./a/b`, `a//b`, `a/./b` → `a/b`; `a/../b` → `b`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_save(config: &[u8], layers: &[Vec<u8>], link_second: bool) -> Vec<u8> {
        let config_name = format!("{}.json", Digest::of(config).hex());
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, bytes).unwrap();
        };
        add(&config_name, config);
        let mut names = Vec::new();
        for (index, layer) in layers.iter().enumerate() {
            let name = format!("layer{index}/layer.tar");
            if !(link_second && index == 1) {
                add(&name, layer);
            }
            names.push(name);
        }
        let manifest =
            serde_json::json!([{ "Config": config_name, "RepoTags": null, "Layers": names }]);
        add("manifest.json", manifest.to_string().as_bytes());
        let mut builder = builder;
        if link_second {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, "layer1/layer.tar", "../layer0/layer.tar")
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn config_for(layers: &[Vec<u8>]) -> Vec<u8> {
        let ids: Vec<String> = layers
            .iter()
            .map(|layer| Digest::of(layer).to_string())
            .collect();
        serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn an_archive_is_imported_and_checked_against_the_image_id() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let layers = vec![vec![1u8; 100], vec![2u8; (SMALL_MEMBER + 10) as usize]];
        let config = config_for(&layers);
        let archive = docker_save(&config, &layers, false);
        let created = CreatedBlobs::default();
        let (config_ref, imported) =
            import(&blobs, archive.as_slice(), &Digest::of(&config), &created).unwrap();
        assert_eq!(config_ref.digest, Digest::of(&config));
        assert_eq!(imported.len(), 2);
        assert_eq!(imported[1].size, SMALL_MEMBER + 10);
        assert_eq!(created.lock().unwrap().len(), 3);
        for layer in &imported {
            assert!(blobs.has(&layer.digest));
        }

        // A wrong image id stores nothing that could be trusted as it.
        let other = Digest::of(b"other");
        assert!(import(&blobs, archive.as_slice(), &other, &created).is_err());
    }

    /// A tar of `members` (path, bytes) in order.
    fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, path, bytes.as_slice())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_member_the_manifest_does_not_name_is_not_kept() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let layers = vec![vec![1u8; 100]];
        let config = config_for(&layers);
        let mut archive = docker_save(&config, &layers, false);
        // Append an unnamed large member before the end-of-archive blocks.
        archive.truncate(archive.len() - 1024);
        let extra = vec![9u8; (SMALL_MEMBER + 1) as usize];
        archive.extend_from_slice(&tar_of(&[("junk/layer.tar".into(), extra.clone())]));
        let created = CreatedBlobs::default();
        let (_, imported) =
            import(&blobs, archive.as_slice(), &Digest::of(&config), &created).unwrap();
        assert_eq!(imported.len(), 1);
        assert!(
            !blobs.has(&Digest::of(&extra)),
            "the unnamed member is gone"
        );
        assert_eq!(created.lock().unwrap().len(), 2, "config and layer");
    }

    #[test]
    fn a_flood_of_members_is_refused_with_bounded_memory() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let created = CreatedBlobs::default();
        let id = Digest::of(b"config");
        // More members than any archive has.
        let many: Vec<(String, Vec<u8>)> = (0..=MEMBERS_MAX)
            .map(|index| (format!("f{index}"), Vec::new()))
            .collect();
        let error = import(&blobs, tar_of(&many).as_slice(), &id, &created)
            .unwrap_err()
            .to_string();
        assert!(error.contains("more than 100000 members"), "{error}");
        // Small members adding up past the limit.
        let chunk = vec![0u8; SMALL_MEMBER as usize];
        let heavy: Vec<(String, Vec<u8>)> = (0..65)
            .map(|index| (format!("s{index}"), chunk.clone()))
            .collect();
        let error = import(&blobs, tar_of(&heavy).as_slice(), &id, &created)
            .unwrap_err()
            .to_string();
        assert!(error.contains("MiB of small files"), "{error}");
        // A manifest naming a layer the archive lacks.
        let layers = vec![vec![1u8; 10]];
        let config = config_for(&layers);
        let config_name = format!("{}.json", Digest::of(&config).hex());
        let manifest = serde_json::json!([{ "Config": config_name, "Layers": ["gone/layer.tar"] }]);
        let lacking = tar_of(&[
            (config_name.clone(), config.clone()),
            ("manifest.json".into(), manifest.to_string().into_bytes()),
        ]);
        let error = import(&blobs, lacking.as_slice(), &Digest::of(&config), &created)
            .unwrap_err()
            .to_string();
        assert!(error.contains("lacks gone/layer.tar"), "{error}");
        // A truncated stream.
        let big = vec![vec![5u8; (SMALL_MEMBER + 100) as usize]];
        let config = config_for(&big);
        let whole = docker_save(&config, &big, false);
        assert!(import(&blobs, whole.as_slice(), &Digest::of(&config), &created).is_ok());
        let cut = &whole[..whole.len() / 2];
        let error = import(&blobs, cut, &Digest::of(&config), &created).unwrap_err();
        assert!(format!("{error:#}").contains("unreadable"), "{error:#}");
    }

    #[test]
    fn symlinked_layers_resolve() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let layers = vec![vec![7u8; 10], vec![7u8; 10]];
        let config = config_for(&layers);
        let archive = docker_save(&config, &layers, true);
        let (_, imported) = import(
            &blobs,
            archive.as_slice(),
            &Digest::of(&config),
            &CreatedBlobs::default(),
        )
        .unwrap();
        assert_eq!(imported[0], imported[1]);
    }

    #[test]
    fn records_round_trip_and_are_found_by_reference() {
        let root = tempfile::tempdir().unwrap();
        let bases = Bases::at(root.path());
        let blob = BlobRef {
            digest: Digest::of(b"c"),
            size: 1,
        };
        let record = BaseRecord {
            image_id: Digest::of(b"c"),
            config: blob.clone(),
            layers: vec![blob.clone()],
            references: vec!["debian:12".into()],
            imported_at_epoch_ms: 5,
            ca_bundle: Some(CaBundle::Layer { layer: blob }),
        };
        bases.save(&record).unwrap();
        assert_eq!(bases.load(&record.image_id), Some(record.clone()));
        assert_eq!(bases.find_by_reference("debian:12"), Some(record));
        assert_eq!(bases.find_by_reference("debian:13"), None);
        let _lock = bases.lock_import(&Digest::of(b"c")).unwrap();
    }
}
