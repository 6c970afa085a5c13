//! The docker-archive writer (`docker save` format: `manifest.json`, the
//! config as `<hex>.json`, each layer as `<diff id hex>/layer.tar`).
//!
//! **Full** archives carry every layer and load anywhere (`docker load`,
//! `podman load`, `skopeo docker-archive:`). **Thin** archives omit the
//! layers the engine already holds: Docker loads them at the cost of the
//! new layers (the engine skips layers it has); Podman refuses them.

use std::fs::File;
use std::io::{self, Read, Write};

use anyhow::{Context, Result};

use super::{BlobRef, StoredImage};

/// Opens a layer's bytes (from the store or an artifact's layout).
pub type OpenBlob<'a> = &'a dyn Fn(&BlobRef) -> Result<File>;

/// Writes a docker-archive of `image` (config bytes given) to `out`,
/// tagged `repo_tag`, with the layers for which `include` says yes.
/// Layer bytes are copied file to file (`copy_file_range` where the kernel
/// can). Returns the bytes written.
pub fn write(
    out: &mut File,
    image: &StoredImage,
    config: &[u8],
    repo_tag: Option<&str>,
    include: &dyn Fn(usize, &BlobRef) -> bool,
    open: OpenBlob<'_>,
) -> Result<u64> {
    let config_name = format!("{}.json", image.config.digest.hex());
    let layer_names: Vec<String> = image
        .layers
        .iter()
        .map(|layer| format!("{}/layer.tar", layer.digest.hex()))
        .collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": repo_tag.map(|tag| vec![tag]),
        "Layers": layer_names,
    }]);
    let manifest = serde_json::to_vec(&manifest).context("Failed to encode manifest.json")?;
    let mut total = 0;
    total += append_bytes(out, "manifest.json", &manifest)?;
    total += append_bytes(out, &config_name, config)?;
    let mut written = std::collections::HashSet::new();
    for (index, (layer, name)) in image.layers.iter().zip(&layer_names).enumerate() {
        if !include(index, layer) || !written.insert(layer.digest.clone()) {
            continue;
        }
        let file = open(layer)?;
        total += append_file(out, name, layer.size, file)?;
    }
    out.write_all(&[0; 1024]).map_err(disk_error)?;
    total += 1024;
    out.flush().map_err(disk_error)?;
    Ok(total)
}

fn disk_error(error: io::Error) -> anyhow::Error {
    anyhow::Error::new(error).context("Failed to write the image archive (is the disk full?)")
}

fn header(path: &str, size: u64) -> Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(path)
        .with_context(|| format!("Bad archive member name {path}"))?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

fn pad(out: &mut File, size: u64) -> Result<u64> {
    let padding = (512 - size % 512) % 512;
    out.write_all(&vec![0; padding as usize])
        .map_err(disk_error)?;
    Ok(padding)
}

fn append_bytes(out: &mut File, path: &str, bytes: &[u8]) -> Result<u64> {
    out.write_all(header(path, bytes.len() as u64)?.as_bytes())
        .and_then(|()| out.write_all(bytes))
        .map_err(disk_error)?;
    Ok(512 + bytes.len() as u64 + pad(out, bytes.len() as u64)?)
}

fn append_file(out: &mut File, path: &str, size: u64, file: File) -> Result<u64> {
    out.write_all(header(path, size)?.as_bytes())
        .map_err(disk_error)?;
    let copied = io::copy(&mut file.take(size), out).map_err(disk_error)?;
    if copied != size {
        anyhow::bail!(
            "{path} is shorter than its recorded size ({copied} of {size} bytes); run `arca build` again to re-import it"
        );
    }
    Ok(512 + size + pad(out, size)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::BlobStore;
    use std::io::Seek;

    fn read_back(file: &mut File) -> Vec<u8> {
        file.rewind().unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn thin_archives_name_every_layer_but_carry_only_the_new_ones() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let base: BlobRef = blobs.put_bytes(b"base layer").unwrap().into();
        let top: BlobRef = blobs.put_bytes(b"top layer").unwrap().into();
        let config = b"{\"rootfs\":{}}";
        let image = StoredImage {
            manifest: base.clone(),
            config: blobs.put_bytes(config).unwrap().into(),
            layers: vec![base.clone(), top.clone()],
        };
        let open = |blob: &BlobRef| blobs.open(&blob.digest);
        let mut thin_file = tempfile::tempfile().unwrap();
        write(
            &mut thin_file,
            &image,
            config,
            Some("a:b"),
            &|index, _| index >= 1,
            &open,
        )
        .unwrap();
        let thin = read_back(&mut thin_file);
        let mut archive = tar::Archive::new(thin.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "manifest.json".to_owned(),
                format!("{}.json", image.config.digest.hex()),
                format!("{}/layer.tar", top.digest.hex()),
            ]
        );
        let mut full_file = tempfile::tempfile().unwrap();
        let bytes = write(&mut full_file, &image, config, None, &|_, _| true, &open).unwrap();
        let full = read_back(&mut full_file);
        assert_eq!(bytes, full.len() as u64);
        assert!(full.len() > thin.len());
    }
}
