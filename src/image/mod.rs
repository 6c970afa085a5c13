//! Container images over the blob store ([`crate::blobs`]): the OCI formats
//! (through `oci-spec`), the reproducible layer writer ([`layer`]), the
//! runtime config derived from the base's ([`config`]), bases imported
//! once per image id ([`base`]), the per-artifact OCI image layout
//! ([`layout`]), the docker-archive writer, thin or full ([`archive`]),
//! a path looked up through stored layers ([`lookup`]), artifacts that
//! refer to an image (an SBOM, provenance: [`referrer`]),
//! and garbage collection of unreferenced blobs ([`gc`]).
//!
//! Pure over the store: no engine, no registry. Layers are kept
//! uncompressed (`application/vnd.oci.image.layer.v1.tar`), so a layer's
//! blob digest is also its diff id.

pub mod archive;
pub mod base;
pub mod config;
pub mod descriptor;
pub mod export;
pub mod gc;
pub mod layer;
pub mod layout;
pub mod lookup;
pub mod referrer;

use serde::{Deserialize, Serialize};

use crate::blobs::{Digest, Written};

/// A blob an image refers to: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

impl From<Written> for BlobRef {
    fn from(written: Written) -> Self {
        Self {
            digest: written.digest,
            size: written.size,
        }
    }
}

impl From<&Written> for BlobRef {
    fn from(written: &Written) -> Self {
        Self {
            digest: written.digest.clone(),
            size: written.size,
        }
    }
}

/// An image whose every blob is in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub manifest: BlobRef,
    pub config: BlobRef,
    /// Bottom to top.
    pub layers: Vec<BlobRef>,
}

impl StoredImage {
    /// Every blob of the image (manifest, config, layers).
    pub fn blobs(&self) -> impl Iterator<Item = &BlobRef> {
        [&self.manifest, &self.config]
            .into_iter()
            .chain(self.layers.iter())
    }
}

/// `epoch_ms` as an RFC 3339 UTC timestamp (`2024-11-23T22:13:20Z`, with
/// milliseconds when they are not zero), as image configs want it.
pub fn rfc3339(epoch_ms: u64) -> String {
    let seconds = epoch_ms / 1000;
    let millis = epoch_ms % 1000;
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let time = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if millis == 0 {
        format!("{time}Z")
    } else {
        format!("{time}.{millis:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_732_400_000_000), "2024-11-23T22:13:20Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }
}
