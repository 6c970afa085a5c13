//! The build's provenance: an in-toto v1 statement whose subject is the
//! image manifest, with a SLSA provenance v1 predicate: what was asked
//! (crate, binary, profile, features, base), how cargo ran (the command,
//! in the builder image or on the host), what went in (the source
//! fingerprint, the input manifest's digest, the builder and base images
//! by digest) and when (start and end of the build).
//!
//! Holds no host path, environment value or credential: the manifest path
//! is relative to the workspace, `[rust] env` is not recorded.

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// The media type of an in-toto statement.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The statement's predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// This build type's URI.
pub const BUILD_TYPE: &str = "https://khoek.io/arca/build/rust/v1";

/// How cargo built the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builder {
    /// In the builder image (by tag and image id).
    Container { image: String, image_id: String },
    /// With the host's toolchain (`rustc -vV`'s release line).
    Host { rustc: String },
}

/// What the statement records.
#[derive(Debug, Clone)]
pub struct BuildFacts<'a> {
    /// The image's name (the artifact's tag).
    pub subject_name: &'a str,
    /// `sha256:<hex>` of the image manifest.
    pub manifest_digest: &'a str,
    pub artifact_id: &'a str,
    pub crate_name: &'a str,
    pub crate_version: &'a str,
    pub bin: &'a str,
    pub profile: &'a str,
    pub features: &'a [String],
    pub base_image: &'a str,
    pub base_image_id: &'a str,
    /// The manifest path relative to the workspace root.
    pub manifest_path: &'a str,
    pub builder: Builder,
    /// The artifact's build fingerprint (hex SHA-256 of its inputs).
    pub source_fingerprint: &'a str,
    /// `sha256:<hex>` of the stored `inputs.json`.
    pub inputs_digest: &'a str,
    /// The SBOM blob's digest, when the image has one.
    pub sbom_digest: Option<&'a str>,
    pub started_epoch_ms: u64,
    pub finished_epoch_ms: u64,
}

fn sha256_of(digest: &str) -> Value {
    json!({"sha256": digest.strip_prefix("sha256:").unwrap_or(digest)})
}

/// The `cargo build` command as run (minus the host-specific paths).
pub fn cargo_command(facts: &BuildFacts<'_>) -> Vec<String> {
    let mut command: Vec<String> = [
        "cargo",
        "build",
        "--locked",
        "--manifest-path",
        facts.manifest_path,
        "--profile",
        facts.profile,
        "--bin",
        facts.bin,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    if !facts.features.is_empty() {
        command.push("--features".into());
        command.push(facts.features.join(","));
    }
    command
}

/// The statement's bytes (compact JSON).
pub fn write(facts: &BuildFacts<'_>) -> Result<Vec<u8>> {
    let (mode, builder_dependency) = match &facts.builder {
        Builder::Container { image, image_id } => (
            "container",
            json!({"uri": format!("docker-image://{image}"), "name": "builder image", "digest": sha256_of(image_id)}),
        ),
        Builder::Host { rustc } => (
            "host",
            json!({"uri": "arca:host-toolchain", "name": "host toolchain", "annotations": {"rustc": rustc}}),
        ),
    };
    let mut resolved = vec![
        json!({"uri": "arca:source", "name": "source fingerprint", "digest": sha256_of(facts.source_fingerprint)}),
        json!({"uri": "arca:inputs.json", "name": "input manifest", "digest": sha256_of(facts.inputs_digest)}),
        builder_dependency,
        json!({"uri": format!("docker-image://{}", facts.base_image), "name": "runtime base image", "digest": sha256_of(facts.base_image_id)}),
    ];
    if let Some(sbom) = facts.sbom_digest {
        resolved.push(json!({"uri": "arca:sbom", "name": "SPDX SBOM", "digest": sha256_of(sbom), "mediaType": super::spdx::MEDIA_TYPE}));
    }
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": facts.subject_name, "digest": sha256_of(facts.manifest_digest)}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "crate": facts.crate_name,
                    "version": facts.crate_version,
                    "bin": facts.bin,
                    "profile": facts.profile,
                    "features": facts.features,
                    "baseImage": facts.base_image,
                },
                "internalParameters": {
                    "mode": mode,
                    "cargoCommand": cargo_command(facts),
                },
                "resolvedDependencies": resolved,
            },
            "runDetails": {
                "builder": {
                    "id": BUILD_TYPE,
                    "version": {"arca": env!("CARGO_PKG_VERSION")},
                },
                "metadata": {
                    "invocationId": facts.artifact_id,
                    "startedOn": crate::image::rfc3339(facts.started_epoch_ms),
                    "finishedOn": crate::image::rfc3339(facts.finished_epoch_ms),
                },
            },
        },
    });
    serde_json::to_vec(&statement).context("Failed to encode the provenance statement")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_the_image_and_what_went_in() {
        let features = vec!["fast".to_owned()];
        let facts = BuildFacts {
            subject_name: "hello-abc",
            manifest_digest: "sha256:1111",
            artifact_id: "abc",
            crate_name: "hello",
            crate_version: "0.1.0",
            bin: "hello",
            profile: "release",
            features: &features,
            base_image: "debian:bookworm-slim",
            base_image_id: "sha256:2222",
            manifest_path: "hello/Cargo.toml",
            builder: Builder::Container {
                image: "arca-builder:x".into(),
                image_id: "sha256:3333".into(),
            },
            source_fingerprint: "4444",
            inputs_digest: "sha256:5555",
            sbom_digest: Some("sha256:6666"),
            started_epoch_ms: 1_700_000_000_000,
            finished_epoch_ms: 1_700_000_001_500,
        };
        let statement: Value = serde_json::from_slice(&write(&facts).unwrap()).unwrap();
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["subject"][0]["digest"]["sha256"], "1111");
        assert_eq!(statement["predicateType"], PREDICATE_TYPE);
        let definition = &statement["predicate"]["buildDefinition"];
        assert_eq!(
            definition["internalParameters"]["cargoCommand"]
                .as_array()
                .unwrap()
                .last()
                .unwrap(),
            "fast"
        );
        let digests: Vec<&str> = definition["resolvedDependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"]["sha256"].as_str().unwrap())
            .collect();
        assert_eq!(digests, ["4444", "5555", "3333", "2222", "6666"]);
        assert_eq!(
            statement["predicate"]["runDetails"]["metadata"]["finishedOn"],
            "2023-11-14T22:13:21.500Z"
        );
    }
}
