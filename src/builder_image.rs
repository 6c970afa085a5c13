//! The builder image's names: which image a runtime base builds in (the
//! original CLI's CUDA promotion) and its cached tag
//! `arca-builder:<sha256(recipe version, builder base)>`.
//!
//! A leaf module: both the config checker (its `cuda-builder` hint) and
//! the build plan use it, so neither depends on the other for it.

use sha2::{Digest, Sha256};

/// The builder recipe's version: part of the builder tag and fingerprint.
pub const BUILDER_RECIPE_VERSION: &str = "arca-rust-builder-v1";
/// Repository of the cached builder images.
pub const BUILDER_IMAGE_PREFIX: &str = "arca-builder";

/// The image the binary is built in for a runtime base image:
/// `nvidia/cuda:<v>-base-<os>` and `-runtime-` become `-devel-`; anything
/// else builds in itself.
pub fn builder_base_image(runtime_base_image: &str) -> String {
    let Some((repository, tag)) = runtime_base_image.rsplit_once(':') else {
        return runtime_base_image.to_owned();
    };
    if repository != "nvidia/cuda" || tag.contains("-devel-") {
        return runtime_base_image.to_owned();
    }
    for flavour in ["-base-", "-runtime-"] {
        if let Some((version, os)) = tag.split_once(flavour) {
            return format!("{repository}:{version}-devel-{os}");
        }
    }
    runtime_base_image.to_owned()
}

/// SHA-256 over values, each prefixed by its length as a little-endian u64:
/// the original CLI's hashing of key parts.
pub fn length_prefixed_hash<S: AsRef<str>>(values: &[S]) -> String {
    let mut hasher = Sha256::new();
    for value in values {
        let value = value.as_ref();
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// `arca-builder:<hash>` for a builder base image.
pub fn builder_image_tag(builder_base_image: &str) -> String {
    let hash = length_prefixed_hash(&[BUILDER_RECIPE_VERSION, builder_base_image]);
    format!("{BUILDER_IMAGE_PREFIX}:{hash}")
}

/// The builder tag for a runtime base image (promotion applied).
pub fn builder_image_tag_for_runtime(runtime_base_image: &str) -> String {
    builder_image_tag(&builder_base_image(runtime_base_image))
}
