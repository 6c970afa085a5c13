//! Writes a successful push into the artifact's record: `uploaded_ref`
//! (`registry/repo@sha256:…`) and `uploaded_at_epoch_ms`, the fields the
//! original CLI reads. **Atomic:** the record is rewritten beside itself
//! and renamed over the old one; every other line of it is kept as is.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::store::METADATA_FILE;

/// Records that the artifact in `artifact_dir` was pushed as `uploaded_ref`
/// at `at_epoch_ms`.
pub fn mark_uploaded(artifact_dir: &Path, uploaded_ref: &str, at_epoch_ms: u64) -> Result<()> {
    let path = artifact_dir.join(METADATA_FILE);
    let text = crate::fsread::read_to_string(&path, crate::fsread::Kind::StoreRecord)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not a valid record", path.display()))?;
    if !document.contains_key("artifact_id") {
        bail!("{} is not an Arca artifact record", path.display());
    }
    document["uploaded_ref"] = toml_edit::value(uploaded_ref);
    document["uploaded_at_epoch_ms"] = toml_edit::value(
        i64::try_from(at_epoch_ms).context("The upload time does not fit in a record")?,
    );
    let mut file = tempfile::Builder::new()
        .prefix(".metadata-")
        .tempfile_in(artifact_dir)
        .with_context(|| format!("Failed to write in {}", artifact_dir.display()))?;
    std::io::Write::write_all(&mut file, document.to_string().as_bytes())
        .with_context(|| format!("Failed to write {}", path.display()))?;
    file.as_file()
        .sync_all()
        .with_context(|| format!("Failed to write {}", path.display()))?;
    file.persist(&path)
        .with_context(|| format!("Failed to replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_is_added_and_replaced_keeping_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join(METADATA_FILE);
        std::fs::write(
            &record,
            "schema_version = 3\nartifact_id = \"k3j9x0ab\"\nremote_tag = \"demo-k3j9x0ab\"\nfuture_field = \"kept\"\n",
        )
        .unwrap();
        mark_uploaded(dir.path(), "r.example/demo@sha256:aa", 17).unwrap();
        mark_uploaded(dir.path(), "r.example/demo@sha256:bb", 18).unwrap();
        let text = std::fs::read_to_string(&record).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            value["uploaded_ref"].as_str(),
            Some("r.example/demo@sha256:bb")
        );
        assert_eq!(value["uploaded_at_epoch_ms"].as_integer(), Some(18));
        assert_eq!(value["future_field"].as_str(), Some("kept"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&record, "name = \"other\"\n").unwrap();
        assert!(mark_uploaded(dir.path(), "x", 1).is_err());
    }
}
