//! The SPDX 2.3 JSON document of a [`Bill`]: one package per linked cargo
//! package (purl, `Cargo.lock` checksum, declared license or
//! `NOASSERTION`, download location), the base image as a package, the
//! document `DESCRIBES` the binary's package, which `DEPENDS_ON` each of
//! its dependencies (and they on theirs); the base is a
//! `RUNTIME_DEPENDENCY_OF` the binary's package.
//!
//! Deterministic: packages in the bill's order, the creation time from the
//! bill (`SOURCE_DATE_EPOCH`), the namespace derived from the content, and
//! compact JSON with fields in a fixed order.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Bill, Package, Source};

/// The media type of the stored document.
pub const MEDIA_TYPE: &str = "application/spdx+json";
const NOASSERTION: &str = "NOASSERTION";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub spdx_version: String,
    pub data_license: String,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    pub document_namespace: String,
    pub creation_info: CreationInfo,
    pub packages: Vec<SpdxPackage>,
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationInfo {
    pub created: String,
    pub creators: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpdxPackage {
    pub name: String,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub version_info: String,
    pub download_location: String,
    pub files_analyzed: bool,
    pub license_concluded: String,
    pub license_declared: String,
    pub copyright_text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_info: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    pub external_refs: Vec<ExternalRef>,
    pub primary_package_purpose: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checksum {
    pub algorithm: String,
    pub checksum_value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    pub reference_category: String,
    pub reference_type: String,
    pub reference_locator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub spdx_element_id: String,
    pub relationship_type: String,
    pub related_spdx_element: String,
}

impl Document {
    /// The cargo packages' purls (the base image's excluded).
    pub fn cargo_purls(&self) -> Vec<&str> {
        self.packages
            .iter()
            .flat_map(|package| &package.external_refs)
            .filter(|reference| reference.reference_type == "purl")
            .map(|reference| reference.reference_locator.as_str())
            .filter(|purl| purl.starts_with("pkg:cargo/"))
            .collect()
    }
}

/// Reads a stored document back.
pub fn parse(bytes: &[u8]) -> Result<Document> {
    serde_json::from_slice(bytes).context("The stored SBOM is not an SPDX 2.3 JSON document")
}

/// The document's bytes.
pub fn write(bill: &Bill) -> Result<Vec<u8>> {
    let document = document(bill);
    serde_json::to_vec(&document).context("Failed to encode the SPDX document")
}

fn document(bill: &Bill) -> Document {
    let ids = package_ids(&bill.packages);
    let mut packages: Vec<SpdxPackage> = bill
        .packages
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(index, (package, id))| cargo_package(package, id, index == 0))
        .collect();
    let base_id = "SPDXRef-BaseImage".to_owned();
    packages.push(SpdxPackage {
        name: bill.base.reference.clone(),
        spdx_id: base_id.clone(),
        version_info: bill.base.image_id.clone(),
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        license_concluded: NOASSERTION.into(),
        license_declared: NOASSERTION.into(),
        copyright_text: NOASSERTION.into(),
        // Its id (the config's digest) is the version and in the purl; no
        // checksum: nothing downloadable has that digest.
        source_info: Some("the runtime base image the binary runs on".into()),
        checksums: Vec::new(),
        external_refs: vec![purl_ref(bill.base.purl())],
        primary_package_purpose: "CONTAINER".into(),
    });
    let relationship = |from: &str, kind: &str, to: &str| Relationship {
        spdx_element_id: from.to_owned(),
        relationship_type: kind.to_owned(),
        related_spdx_element: to.to_owned(),
    };
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", &ids[0])];
    relationships.extend(
        bill.depends_on
            .iter()
            .map(|(from, to)| relationship(&ids[*from], "DEPENDS_ON", &ids[*to])),
    );
    relationships.push(relationship(&base_id, "RUNTIME_DEPENDENCY_OF", &ids[0]));
    let root = &bill.packages[0];
    let name = format!("{}-{}", root.name, root.version);
    let mut document = Document {
        spdx_version: "SPDX-2.3".into(),
        data_license: "CC0-1.0".into(),
        spdx_id: "SPDXRef-DOCUMENT".into(),
        name: name.clone(),
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: crate::image::rfc3339(bill.created_epoch_s * 1000),
            creators: vec![format!("Tool: {}", super::tool_name())],
        },
        packages,
        relationships,
    };
    // Unique per content, and the same for the same content.
    let content = serde_json::to_vec(&document).unwrap_or_default();
    let hash = format!("{:x}", Sha256::digest(&content));
    document.document_namespace = format!(
        "https://khoek.io/arca/spdx/{}-{}",
        sanitize_id(&name),
        &hash[..32]
    );
    document
}

fn cargo_package(package: &Package, id: &str, root: bool) -> SpdxPackage {
    let (download_location, source_info) = match &package.source {
        Source::CratesIo => (
            format!(
                "https://crates.io/api/v1/crates/{}/{}/download",
                package.name, package.version
            ),
            None,
        ),
        Source::Registry { url } => (
            NOASSERTION.to_owned(),
            Some(format!("from the cargo registry {url}")),
        ),
        Source::Git { url, commit } => (format!("git+{url}@{commit}"), None),
        Source::Path { relative } => (
            NOASSERTION.to_owned(),
            Some(format!("local package at {relative}")),
        ),
    };
    SpdxPackage {
        name: package.name.clone(),
        spdx_id: id.to_owned(),
        version_info: package.version.clone(),
        download_location,
        files_analyzed: false,
        license_concluded: NOASSERTION.into(),
        license_declared: package
            .license
            .clone()
            .unwrap_or_else(|| NOASSERTION.into()),
        copyright_text: NOASSERTION.into(),
        source_info,
        checksums: package
            .checksum
            .iter()
            .map(|checksum| Checksum {
                algorithm: "SHA256".into(),
                checksum_value: checksum.clone(),
            })
            .collect(),
        external_refs: vec![purl_ref(package.purl())],
        primary_package_purpose: if root { "APPLICATION" } else { "LIBRARY" }.into(),
    }
}

fn purl_ref(purl: String) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER".into(),
        reference_type: "purl".into(),
        reference_locator: purl,
    }
}

/// `SPDXRef-Package-<name>-<version>`, made unique by a counter.
fn package_ids(packages: &[Package]) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    packages
        .iter()
        .map(|package| {
            let base = format!(
                "SPDXRef-Package-{}",
                sanitize_id(&format!("{}-{}", package.name, package.version))
            );
            let count = seen.entry(base.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                base
            } else {
                format!("{base}-{count}")
            }
        })
        .collect()
}

/// SPDX ids take letters, digits, `.` and `-` only.
fn sanitize_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sbom::BaseImage;

    pub(crate) fn sample_bill() -> Bill {
        let package = |name: &str, source: Source, license: Option<&str>| Package {
            name: name.into(),
            version: "1.0.0".into(),
            source,
            checksum: Some("ab".repeat(32)),
            license: license.map(str::to_owned),
        };
        Bill {
            binary: "app".into(),
            packages: vec![
                package(
                    "app",
                    Source::Path {
                        relative: ".".into(),
                    },
                    Some("MIT"),
                ),
                package("itoa", Source::CratesIo, Some("MIT OR Apache-2.0")),
                package(
                    "core_lib",
                    Source::Path {
                        relative: "../core".into(),
                    },
                    None,
                ),
            ],
            depends_on: vec![(0, 1), (0, 2)],
            base: BaseImage {
                reference: "debian:bookworm-slim".into(),
                image_id: format!("sha256:{}", "cd".repeat(32)),
            },
            created_epoch_s: 0,
        }
    }

    #[test]
    fn the_document_describes_the_binary_and_its_dependencies() {
        let bytes = write(&sample_bill()).unwrap();
        let document = parse(&bytes).unwrap();
        assert_eq!(document.spdx_version, "SPDX-2.3");
        assert_eq!(document.creation_info.created, "1970-01-01T00:00:00Z");
        assert_eq!(
            document.cargo_purls(),
            [
                "pkg:cargo/app@1.0.0",
                "pkg:cargo/itoa@1.0.0",
                "pkg:cargo/core_lib@1.0.0"
            ]
        );
        let kinds: Vec<(&str, &str, &str)> = document
            .relationships
            .iter()
            .map(|r| {
                (
                    r.spdx_element_id.as_str(),
                    r.relationship_type.as_str(),
                    r.related_spdx_element.as_str(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Package-app-1.0.0"),
                (
                    "SPDXRef-Package-app-1.0.0",
                    "DEPENDS_ON",
                    "SPDXRef-Package-itoa-1.0.0"
                ),
                (
                    "SPDXRef-Package-app-1.0.0",
                    "DEPENDS_ON",
                    "SPDXRef-Package-core-lib-1.0.0"
                ),
                (
                    "SPDXRef-BaseImage",
                    "RUNTIME_DEPENDENCY_OF",
                    "SPDXRef-Package-app-1.0.0"
                ),
            ]
        );
        // A path dependency names no host path, and an undeclared license
        // is no assertion.
        let core = &document.packages[2];
        assert_eq!(core.license_declared, "NOASSERTION");
        assert_eq!(
            core.source_info.as_deref(),
            Some("local package at ../core")
        );
        assert_eq!(bytes, write(&sample_bill()).unwrap(), "deterministic");
        assert!(
            bytes.len() < 1024 * 4,
            "{} bytes for 4 packages",
            bytes.len()
        );
    }
}
