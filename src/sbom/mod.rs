//! Software bills of materials and build provenance for artifacts.
//!
//! At build time [`linked`] asks cargo which packages the binary links
//! (`cargo tree -e normal` for the build's target and features: neither
//! dev-, build-only nor unselected optional dependencies, nor features
//! only a dev-dependency unifies); the base image joins them as a package
//! of its own. From that
//! [`Bill`], [`spdx`] writes the stored SPDX 2.3 document (deterministic:
//! the same inputs give the same bytes), [`cyclonedx`] converts it to
//! CycloneDX 1.5 on request, and [`provenance`] writes the in-toto SLSA
//! provenance statement; the pipeline stores both as OCI artifacts whose
//! subject is the image ([`crate::image::referrer`]).
//!
//! **Knows neither Docker nor LSP;** it reads cargo's answers and files.

pub mod cyclonedx;
pub mod linked;
pub mod provenance;
pub mod spdx;
pub mod stored;

use serde::{Deserialize, Serialize};

/// Where a package's source came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Source {
    /// crates.io.
    CratesIo,
    /// Another registry, by its index URL (credentials removed).
    Registry { url: String },
    /// A git repository (credentials and query removed) at a commit.
    Git { url: String, commit: String },
    /// A local package, by its path relative to the workspace root.
    Path { relative: String },
}

/// One cargo package linked into the binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub name: String,
    pub version: String,
    pub source: Source,
    /// SHA-256 of the `.crate` file, from `Cargo.lock`.
    pub checksum: Option<String>,
    /// The declared license when it is a valid SPDX expression.
    pub license: Option<String>,
}

impl Package {
    /// `pkg:cargo/<name>@<version>`, with `repository_url` for another
    /// registry and `vcs_url` for git.
    pub fn purl(&self) -> String {
        let Ok(mut purl) = packageurl::PackageUrl::new("cargo", self.name.as_str()) else {
            return format!("pkg:cargo/{}@{}", self.name, self.version);
        };
        let _ = purl.with_version(self.version.as_str());
        match &self.source {
            Source::Registry { url } => {
                let _ = purl.add_qualifier("repository_url", url.as_str());
            }
            Source::Git { url, commit } => {
                let _ = purl.add_qualifier("vcs_url", format!("git+{url}@{commit}"));
            }
            Source::CratesIo | Source::Path { .. } => {}
        }
        purl.to_string()
    }
}

/// The runtime base image the binary runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseImage {
    /// The reference as configured (`nvidia/cuda:12.8.1-runtime-ubuntu24.04`).
    pub reference: String,
    /// The engine's image id (`sha256:…`, its config's digest).
    pub image_id: String,
}

impl BaseImage {
    /// `pkg:oci/<name>@<image id>?repository_url=<registry/repo>&tag=<tag>`.
    pub fn purl(&self) -> String {
        let (repository, tag) = split_reference(&self.reference);
        let name = repository.rsplit('/').next().unwrap_or(repository);
        let Ok(mut purl) = packageurl::PackageUrl::new("oci", name) else {
            return format!("pkg:oci/{name}@{}", self.image_id);
        };
        let _ = purl.with_version(self.image_id.as_str());
        let _ = purl.add_qualifier("repository_url", repository);
        if let Some(tag) = tag {
            let _ = purl.add_qualifier("tag", tag);
        }
        purl.to_string()
    }
}

/// `repo[:tag][@digest]` → (`repo`, tag).
fn split_reference(reference: &str) -> (&str, Option<&str>) {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (without_digest, None),
    }
}

/// What went into one artifact: the binary's package, what it links, the
/// base, and the dependency edges between packages (indexes into
/// `packages`, 0 being the root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bill {
    /// The binary target's name.
    pub binary: String,
    /// Root first, then sorted.
    pub packages: Vec<Package>,
    /// `(from, to)`: `packages[from]` depends on `packages[to]`; sorted.
    pub depends_on: Vec<(usize, usize)>,
    pub base: BaseImage,
    /// Seconds since 1970 (`SOURCE_DATE_EPOCH`, else 0).
    pub created_epoch_s: u64,
}

/// The tool named as the documents' creator.
pub fn tool_name() -> String {
    format!("arca-{}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, source: Source) -> Package {
        Package {
            name: name.into(),
            version: "1.2.3".into(),
            source,
            checksum: None,
            license: None,
        }
    }

    #[test]
    fn purls_follow_the_purl_spec_for_each_source() {
        assert_eq!(
            package("itoa", Source::CratesIo).purl(),
            "pkg:cargo/itoa@1.2.3"
        );
        assert_eq!(
            package(
                "core",
                Source::Path {
                    relative: "../core".into()
                }
            )
            .purl(),
            "pkg:cargo/core@1.2.3"
        );
        assert_eq!(
            package(
                "dep",
                Source::Git {
                    url: "https://example.com/r.git".into(),
                    commit: "abc".into()
                }
            )
            .purl(),
            "pkg:cargo/dep@1.2.3?vcs_url=git%2Bhttps:%2F%2Fexample.com%2Fr.git%40abc"
        );
    }

    #[test]
    fn base_purls_name_repository_tag_and_id() {
        let base = BaseImage {
            reference: "registry.example:5000/team/cuda:12.8-runtime".into(),
            image_id: "sha256:ab".into(),
        };
        assert_eq!(
            base.purl(),
            "pkg:oci/cuda@sha256:ab?repository_url=registry.example:5000%2Fteam%2Fcuda&tag=12.8-runtime"
        );
        assert_eq!(
            split_reference("localhost:5000/busybox"),
            ("localhost:5000/busybox", None)
        );
    }
}
