//! OCI descriptors and the stored blobs they name: [`descriptor`] turns a
//! [`BlobRef`] into an `oci-spec` descriptor, [`blob_ref`] back. Shared by
//! the image layout and the artifacts that refer to an image.

use anyhow::{Result, anyhow};
use oci_spec::image::{Descriptor, MediaType};

use super::BlobRef;
use crate::blobs::Digest;

/// An OCI descriptor of a stored blob.
pub fn descriptor(media_type: MediaType, blob: &BlobRef) -> Result<Descriptor> {
    let digest: oci_spec::image::Digest = blob
        .digest
        .to_string()
        .parse()
        .map_err(|error| anyhow!("bad digest {}: {error}", blob.digest))?;
    Ok(Descriptor::new(media_type, blob.size, digest))
}

/// The stored blob a descriptor names.
pub fn blob_ref(descriptor: &Descriptor) -> Result<BlobRef> {
    Ok(BlobRef {
        digest: Digest::parse(descriptor.digest().as_ref())?,
        size: descriptor.size(),
    })
}
