//! Small, real images for the push tests and benchmarks: deterministic
//! layer tars, a standard OCI image layout (what the layer store keeps per
//! artifact) and a docker-archive (what the original CLI kept), and an
//! artifact record around either. Nothing here is used by a push itself.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::store::{ARCHIVE_FILE, ArtifactMetadata, Store, StoredArtifact};

/// A layer tar holding `files` (path, contents), mode 0755, mtime 0.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *contents)
            .expect("writing a tar into memory cannot fail");
    }
    builder
        .into_inner()
        .expect("writing a tar into memory cannot fail")
}

fn digest(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn config_json(layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", digest(l)))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Entrypoint": ["/app"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "arca test"})).collect::<Vec<_>>()
    }))
    .expect("JSON of plain values")
}

/// Writes an OCI image layout with uncompressed `layers` into `dir`;
/// returns the manifest digest (`sha256:…`).
pub fn write_layout(dir: &Path, layers: &[Vec<u8>], ref_name: &str) -> Result<String> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let put = |bytes: &[u8]| -> Result<String> {
        let hex = digest(bytes);
        std::fs::write(blobs.join(&hex), bytes)?;
        Ok(hex)
    };
    let config = config_json(layers);
    let config_hex = put(&config)?;
    let mut descriptors = Vec::new();
    for layer in layers {
        let hex = put(layer)?;
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{hex}"),
            "size": layer.len(),
        }));
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_hex}"),
            "size": config.len(),
        },
        "layers": descriptors,
    }))?;
    let manifest_hex = put(&manifest)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{manifest_hex}"),
                "size": manifest.len(),
                "annotations": { "org.opencontainers.image.ref.name": ref_name },
            }],
        }))?,
    )?;
    Ok(format!("sha256:{manifest_hex}"))
}

/// Writes a docker-archive (`docker save` layout: `manifest.json`, the
/// config, `<id>/layer.tar`) with `layers` to `path`.
pub fn write_docker_archive(path: &Path, layers: &[Vec<u8>], repo_tag: &str) -> Result<()> {
    let config = config_json(layers);
    let config_name = format!("{}.json", digest(&config));
    let mut builder = tar::Builder::new(std::fs::File::create(path)?);
    let mut append = |name: &str, bytes: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        builder.append_data(&mut header, name, bytes)?;
        Ok(())
    };
    let mut names = Vec::new();
    for layer in layers {
        let name = format!("{}/layer.tar", digest(layer));
        append(&name, layer)?;
        names.push(name);
    }
    append(&config_name, &config)?;
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": names,
    }]))?;
    append("manifest.json", &manifest)?;
    builder.into_inner()?.flush()?;
    Ok(())
}

/// How a fixture artifact keeps its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `image/` OCI layout (the layer store's form).
    Layout,
    /// `image.tar` docker-archive only (the original CLI's form).
    Archive,
}

/// Writes an artifact record `id` for crate `demo` at `source` into the
/// store, with its image in `form`.
pub fn write_artifact(
    store: &Store,
    id: &str,
    source: &Path,
    layers: &[Vec<u8>],
    form: Form,
) -> Result<StoredArtifact> {
    let pending = store.create(id)?;
    match form {
        Form::Layout => {
            write_layout(
                &pending.staging_dir().join("image"),
                layers,
                &format!("demo-{id}"),
            )?;
        }
        Form::Archive => write_docker_archive(
            &pending.staging_dir().join(ARCHIVE_FILE),
            layers,
            &format!("arca-local:demo-{id}"),
        )?,
    }
    let source_path = source.to_string_lossy().into_owned();
    pending.commit(&ArtifactMetadata {
        schema_version: crate::store::CURRENT_SCHEMA_VERSION,
        artifact_id: id.to_owned(),
        remote_tag: format!("demo-{id}"),
        build_fingerprint: "0".repeat(64),
        kind: "rust".to_owned(),
        created_at_epoch_ms: crate::store::now_epoch_ms(),
        crate_name: "demo".to_owned(),
        crate_version: "0.1.0".to_owned(),
        binary_name: "demo".to_owned(),
        manifest_path: PathBuf::from(&source_path)
            .join("Cargo.toml")
            .to_string_lossy()
            .into_owned(),
        source_path,
        cargo_profile: "release".to_owned(),
        cargo_features: Vec::new(),
        base_image: "debian:bookworm-slim".to_owned(),
        runtime: "docker".to_owned(),
        local_tag: format!("arca-local:demo-{id}"),
        archive_file: ARCHIVE_FILE.to_owned(),
        uploaded_ref: None,
        uploaded_at_epoch_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::source;

    #[test]
    fn layouts_and_archives_read_back_as_the_same_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("containers"));
        let layers = vec![
            layer_tar(&[("base.txt", b"base layer")]),
            layer_tar(&[("app", b"\x7fELF binary")]),
        ];
        let from_layout =
            write_artifact(&store, "layout01", dir.path(), &layers, Form::Layout).unwrap();
        let from_archive =
            write_artifact(&store, "archiv01", dir.path(), &layers, Form::Archive).unwrap();
        let layout = source::read(&from_layout).unwrap();
        let archive = source::read(&from_archive).unwrap();
        let digests = |image: &source::Image| {
            image
                .blobs()
                .map(|b| (b.digest.clone(), b.size))
                .collect::<Vec<_>>()
        };
        assert_eq!(digests(&layout), digests(&archive));
        assert_eq!(layout.layers.len(), 2);
        assert_eq!(layout.layers[1].size, layers[1].len() as u64);
        // The archive's blobs are byte ranges of image.tar holding the layers.
        let range = &archive.layers[1].data;
        let bytes = std::fs::read(&range.path).unwrap();
        assert_eq!(
            &bytes[range.offset as usize..(range.offset + range.len) as usize],
            layers[1].as_slice()
        );
        let manifest: serde_json::Value = serde_json::from_slice(&archive.manifest).unwrap();
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );
        assert_eq!(manifest["config"]["digest"], archive.config.digest.as_str());
    }

    #[test]
    fn a_pruned_blob_and_a_missing_image_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("containers"));
        let layers = vec![layer_tar(&[("app", b"binary")])];
        let artifact =
            write_artifact(&store, "pruned01", dir.path(), &layers, Form::Layout).unwrap();
        let layer = source::read(&artifact).unwrap().layers[0].clone();
        std::fs::remove_file(&layer.data.path).unwrap();
        let error = source::read(&artifact).unwrap_err();
        assert!(
            error.contains(&layer.digest) && error.contains("missing"),
            "{error}"
        );
        std::fs::remove_dir_all(artifact.dir.join("image")).unwrap();
        let error = source::read(&artifact).unwrap_err();
        assert!(error.contains("pruned"), "{error}");
    }
}
