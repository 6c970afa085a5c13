//! CycloneDX 1.5 JSON, converted from the stored SPDX document (the one
//! source of truth): the binary's package as the BOM's subject component,
//! every other package as a component (`library`, or `container` for the
//! base image) with its purl, hash, license expression and distribution
//! URL, and the `DEPENDS_ON` relationships as `dependencies`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::spdx::{Document, SpdxPackage};

/// The media type of a CycloneDX JSON BOM.
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
const NOASSERTION: &str = "NOASSERTION";

/// The BOM's bytes (pretty JSON, deterministic like the SPDX document).
pub fn from_spdx(document: &Document) -> Result<Vec<u8>> {
    let described = document
        .relationships
        .iter()
        .find(|relationship| relationship.relationship_type == "DESCRIBES")
        .map(|relationship| relationship.related_spdx_element.as_str());
    let mut root = None;
    let mut components = Vec::new();
    for package in &document.packages {
        if Some(package.spdx_id.as_str()) == described {
            root = Some(component(package, "application"));
        } else if package.primary_package_purpose == "CONTAINER" {
            components.push(component(package, "container"));
        } else {
            components.push(component(package, "library"));
        }
    }
    let mut dependencies: BTreeMap<&str, Vec<&str>> = document
        .packages
        .iter()
        .map(|package| (package.spdx_id.as_str(), Vec::new()))
        .collect();
    for relationship in &document.relationships {
        // `A DEPENDS_ON B`: A depends on B; `A RUNTIME_DEPENDENCY_OF B`
        // (the base image): B depends on A.
        let (from, to) = match relationship.relationship_type.as_str() {
            "DEPENDS_ON" => (
                relationship.spdx_element_id.as_str(),
                relationship.related_spdx_element.as_str(),
            ),
            "RUNTIME_DEPENDENCY_OF" => (
                relationship.related_spdx_element.as_str(),
                relationship.spdx_element_id.as_str(),
            ),
            _ => continue,
        };
        if let Some(list) = dependencies.get_mut(from) {
            list.push(to);
        }
    }
    let hash = Sha256::digest(document.document_namespace.as_bytes());
    let serial = uuid_from(&hash);
    let bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": document.creation_info.created,
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "arca",
                    "version": env!("CARGO_PKG_VERSION"),
                }]
            },
            "component": root,
        },
        "components": components,
        "dependencies": dependencies
            .into_iter()
            .map(|(reference, depends_on)| json!({"ref": reference, "dependsOn": depends_on}))
            .collect::<Vec<_>>(),
    });
    serde_json::to_vec_pretty(&bom).context("Failed to encode the CycloneDX BOM")
}

fn component(package: &SpdxPackage, kind: &str) -> Value {
    let mut component = json!({
        "type": kind,
        "bom-ref": package.spdx_id,
        "name": package.name,
        "version": package.version_info,
    });
    let object = component.as_object_mut().expect("a JSON object");
    if let Some(purl) = package
        .external_refs
        .iter()
        .find(|reference| reference.reference_type == "purl")
    {
        object.insert("purl".into(), json!(purl.reference_locator));
    }
    if !package.checksums.is_empty() {
        object.insert(
            "hashes".into(),
            package
                .checksums
                .iter()
                .map(|checksum| json!({"alg": "SHA-256", "content": checksum.checksum_value}))
                .collect(),
        );
    }
    if package.license_declared != NOASSERTION {
        object.insert(
            "licenses".into(),
            json!([{"expression": package.license_declared}]),
        );
    }
    if package.download_location != NOASSERTION {
        let kind = if package.download_location.starts_with("git+") {
            "vcs"
        } else {
            "distribution"
        };
        let url = package
            .download_location
            .strip_prefix("git+")
            .unwrap_or(&package.download_location);
        object.insert(
            "externalReferences".into(),
            json!([{"type": kind, "url": url}]),
        );
    }
    component
}

/// An RFC 4122 version-5-shaped UUID from hash bytes (deterministic).
fn uuid_from(hash: &[u8]) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::spdx;

    #[test]
    fn the_bom_has_the_binary_as_subject_and_the_rest_as_components() {
        let document = spdx::parse(&spdx::write(&spdx::tests::sample_bill()).unwrap()).unwrap();
        let bom: Value = serde_json::from_slice(&from_spdx(&document).unwrap()).unwrap();
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(bom["metadata"]["component"]["purl"], "pkg:cargo/app@1.0.0");
        let kinds: Vec<(&str, &str)> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("itoa", "library"),
                ("core_lib", "library"),
                ("debian:bookworm-slim", "container")
            ]
        );
        assert_eq!(
            bom["components"][0]["licenses"][0]["expression"],
            "MIT OR Apache-2.0"
        );
        assert!(bom["components"][1].get("licenses").is_none());
        let root_deps = bom["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == "SPDXRef-Package-app-1.0.0")
            .unwrap();
        assert_eq!(
            root_deps["dependsOn"],
            serde_json::json!([
                "SPDXRef-Package-itoa-1.0.0",
                "SPDXRef-Package-core-lib-1.0.0",
                "SPDXRef-BaseImage"
            ])
        );
        assert!(
            bom["serialNumber"]
                .as_str()
                .unwrap()
                .starts_with("urn:uuid:")
        );
    }
}
