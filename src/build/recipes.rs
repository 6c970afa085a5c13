//! The Containerfiles Arca builds: the cached builder image and the runtime
//! image. Both stay valid for the engine's classic builder (no BuildKit
//! syntax such as `COPY --chmod`; the binary's mode is set in the tar
//! context instead).

use anyhow::{Context, Result};

use crate::store::ArtifactMetadata;

/// Where the toolchain goes when the builder base image has no `cargo`.
const RUSTUP_HOME: &str = "/opt/arca/rustup";
const RUSTUP_CARGO_HOME: &str = "/opt/arca/cargo-home";

/// The builder recipe. A base image that already has `cargo` on its PATH is
/// used as it is (no package manager, no network); otherwise build tools
/// come from the image's package manager and the toolchain from rustup,
/// behind wrappers in `/usr/local/bin` so they work whatever `CARGO_HOME`
/// the build sets.
pub fn builder_containerfile(builder_base_image: &str) -> String {
    format!(
        "FROM {builder_base_image}\n\
RUN set -eu; \\\n\
    if command -v cargo >/dev/null 2>&1; then \\\n\
        echo \"arca: using the base image's toolchain at $(command -v cargo)\"; \\\n\
    else \\\n\
        if command -v apt-get >/dev/null 2>&1; then \\\n\
            apt-get update; \\\n\
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential ca-certificates curl git pkg-config; \\\n\
            rm -rf /var/lib/apt/lists/*; \\\n\
        elif command -v dnf >/dev/null 2>&1; then \\\n\
            dnf install -y gcc gcc-c++ make ca-certificates curl git pkgconf-pkg-config; \\\n\
            dnf clean all; \\\n\
        elif command -v microdnf >/dev/null 2>&1; then \\\n\
            microdnf install -y gcc gcc-c++ make ca-certificates curl git pkgconf-pkg-config; \\\n\
            microdnf clean all; \\\n\
        elif command -v apk >/dev/null 2>&1; then \\\n\
            apk add --no-cache build-base ca-certificates curl git pkgconf; \\\n\
        else \\\n\
            echo 'arca: the builder base image has no cargo and no known package manager (apt-get, dnf, microdnf, apk).' >&2; \\\n\
            exit 1; \\\n\
        fi; \\\n\
        mkdir -p {RUSTUP_CARGO_HOME} {RUSTUP_HOME}; \\\n\
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | CARGO_HOME={RUSTUP_CARGO_HOME} RUSTUP_HOME={RUSTUP_HOME} sh -s -- -y --profile minimal --default-toolchain stable --no-modify-path; \\\n\
        for tool in cargo rustc rustup; do \\\n\
            printf '#!/bin/sh\\nRUSTUP_HOME={RUSTUP_HOME} exec {RUSTUP_CARGO_HOME}/bin/%s \"$@\"\\n' \"$tool\" > /usr/local/bin/$tool; \\\n\
            chmod 0755 /usr/local/bin/$tool; \\\n\
        done; \\\n\
    fi\n"
    )
}

/// The runtime recipe: the base, `ca-certificates` only when the base
/// lacks a CA bundle (as its own layer, before the binary so it stays
/// cached), the binary from the context, the labels, the entrypoint.
pub fn runtime_containerfile(
    metadata: &ArtifactMetadata,
    install_ca_certificates: bool,
) -> Result<String> {
    let binary = &metadata.binary_name;
    let entrypoint = serde_json::to_string(&[format!("/usr/local/bin/{binary}")])
        .context("Failed to encode the entrypoint")?;
    let mut text = format!("FROM {}\n", metadata.base_image);
    if install_ca_certificates {
        text.push_str(
            "RUN set -eu; \\\n\
    if command -v apt-get >/dev/null 2>&1; then \\\n\
        apt-get update; \\\n\
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates; \\\n\
        rm -rf /var/lib/apt/lists/*; \\\n\
    elif command -v dnf >/dev/null 2>&1; then \\\n\
        dnf install -y ca-certificates; dnf clean all; \\\n\
    elif command -v microdnf >/dev/null 2>&1; then \\\n\
        microdnf install -y ca-certificates; microdnf clean all; \\\n\
    elif command -v apk >/dev/null 2>&1; then \\\n\
        apk add --no-cache ca-certificates; \\\n\
    else \\\n\
        echo 'arca: no package manager to install ca-certificates; TLS clients in this image will lack a CA bundle' >&2; \\\n\
    fi\n",
        );
    }
    text.push_str(&format!("COPY {binary} /usr/local/bin/{binary}\n"));
    // One LABEL instruction: the classic builder makes a layer (and runs an
    // intermediate container) per instruction.
    let labels = metadata
        .image_labels()
        .into_iter()
        .map(|(key, value)| {
            serde_json::to_string(&value)
                .map(|value| format!("{key}={value}"))
                .context("Failed to encode a label")
        })
        .collect::<Result<Vec<_>>>()?;
    text.push_str(&format!("LABEL {}\n", labels.join(" \\\n      ")));
    text.push_str(&format!("ENTRYPOINT {entrypoint}\n"));
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> ArtifactMetadata {
        ArtifactMetadata {
            schema_version: 3,
            artifact_id: "ab12cd34".into(),
            remote_tag: "hello-ab12cd34".into(),
            build_fingerprint: "f00".into(),
            kind: "rust".into(),
            created_at_epoch_ms: 7,
            crate_name: "hello".into(),
            crate_version: "0.1.0".into(),
            binary_name: "hello".into(),
            source_path: "/src/hello".into(),
            manifest_path: "/src/hello/Cargo.toml".into(),
            cargo_profile: "release".into(),
            cargo_features: vec!["a".into(), "b".into()],
            base_image: "debian:12".into(),
            runtime: "docker".into(),
            local_tag: "arca-local:hello-ab12cd34".into(),
            archive_file: "image.tar".into(),
            uploaded_ref: None,
            uploaded_at_epoch_ms: None,
        }
    }

    #[test]
    fn runtime_recipe_puts_certificates_before_the_binary_and_labels_after() {
        let text = runtime_containerfile(&metadata(), true).unwrap();
        let certs = text.find("ca-certificates").unwrap();
        let copy = text.find("COPY hello /usr/local/bin/hello").unwrap();
        let label = text.find("LABEL io.khoek.arca.").unwrap();
        assert!(certs < copy && copy < label, "{text}");
        assert!(!text.contains("--chmod"));
        assert!(
            text.contains(" \\\n      io.khoek.arca.cargo-features=\"a,b\" \\\n"),
            "{text}"
        );
        assert!(text.ends_with("ENTRYPOINT [\"/usr/local/bin/hello\"]\n"));
        assert_eq!(text.matches("LABEL ").count(), 1);
        assert_eq!(text.matches("io.khoek.arca.").count(), 10);
    }

    #[test]
    fn runtime_recipe_skips_certificates_when_the_base_has_them() {
        let text = runtime_containerfile(&metadata(), false).unwrap();
        assert!(!text.contains("RUN"), "{text}");
        assert!(text.starts_with("FROM debian:12\nCOPY hello"));
    }

    #[test]
    fn builder_recipe_installs_nothing_when_cargo_exists() {
        let text = builder_containerfile("rust:1");
        assert!(text.starts_with("FROM rust:1\n"));
        let check = text.find("command -v cargo").unwrap();
        let install = text.find("apt-get update").unwrap();
        assert!(check < install);
        assert!(!text.contains("COPY"));
    }
}
