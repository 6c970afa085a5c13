//! The Containerfiles Arca builds: the cached builder image and the runtime
//! image. Both stay valid for the engine's classic builder (no BuildKit
//! syntax such as `COPY --chmod`; the binary's mode is set in the tar
//! context instead).

use anyhow::{Context, Result};

use crate::store::ArtifactMetadata;

/// The builder recipe's script (`/opt/arca/builder.sh` in the image).
pub const BUILDER_SCRIPT: &str = include_str!("builder_recipe.sh");
/// The script's name in the recipe's build context.
pub const BUILDER_SCRIPT_NAME: &str = "builder.sh";
/// What the last step prints when the finished builder has no working cargo.
pub const CARGO_CHECK_FAILED: &str = "arca: builder step 'cargo --version (final check)' failed";

/// The builder recipe. [`BUILDER_SCRIPT`] installs what the builder lacks:
/// the `packages` setting, and, only when the base has no `cargo` (or not
/// the pinned toolchain), build tools from the package manager and the
/// toolchain from rustup (downloaded to a file and checked against its
/// published SHA-256, then run). Every step that fails names itself
/// (`arca: builder step '...' failed`); the last instruction runs
/// `cargo --version`, so an image without a working cargo is never tagged.
/// The host CA bundle (context file [`super::network::RECIPE_CA_CONTEXT_NAME`],
/// possibly empty) is named to curl, cargo, git and apt; the proxy
/// variables come as build arguments, which stay out of the image.
pub fn builder_containerfile(
    builder_base_image: &str,
    shape: &crate::plan::BuilderShape,
) -> String {
    let (toolchain, source) = shape
        .toolchain
        .as_ref()
        .map_or((String::new(), String::new()), |pinned| {
            (pinned.name.clone(), pinned.source.clone())
        });
    let ca = super::network::RECIPE_CA_CONTEXT_NAME;
    format!(
        "FROM {builder_base_image}\n\
COPY {ca} {BUILDER_SCRIPT_NAME} /opt/arca/\n\
ENV PATH=/opt/arca/bin:${{PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}}\n\
RUN ARCA_PACKAGES={} ARCA_TOOLCHAIN={} ARCA_TOOLCHAIN_SOURCE={} sh /opt/arca/{BUILDER_SCRIPT_NAME}\n\
RUN cargo --version || {{ echo \"{}\" >&2; exit 1; }}\n",
        shell_quote(&shape.packages.join(" ")),
        shell_quote(&toolchain),
        shell_quote(&source),
        CARGO_CHECK_FAILED,
    )
}

/// One single-quoted shell word on one line (control characters, which
/// would end a Containerfile line, become `?`).
fn shell_quote(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|ch| if ch.is_control() { '?' } else { ch })
        .collect();
    format!("'{}'", clean.replace('\'', "'\\''"))
}

/// The runtime recipe: the base, `ca-certificates` only when the base
/// lacks a CA bundle (as its own layer, before the binary so it stays
/// cached), the binary from the context, the labels, the entrypoint.
pub fn runtime_containerfile(
    metadata: &ArtifactMetadata,
    install_ca_certificates: bool,
) -> Result<String> {
    runtime_containerfile_with_init(metadata, install_ca_certificates, None)
}

/// Where the image's static init comes from: the builder image, whose
/// recipe installed Debian's `tini` (its `/usr/bin/tini-static`) when
/// `[rust] init = true` (see [`crate::plan::INIT_PACKAGE`]).
pub const INIT_IN_BUILDER: &str = "/usr/bin/tini-static";
/// Where the init goes in the runtime image.
pub const INIT_IN_IMAGE: &str = "/usr/local/bin/arca-init";

/// [`runtime_containerfile`], with `init_from` (the builder image tag) a
/// static init copied from the builder becomes the entrypoint wrapper
/// (`ENTRYPOINT ["/usr/local/bin/arca-init", "--", "/usr/local/bin/<bin>"]`),
/// so the binary is not PID 1 wherever the image runs. `COPY --from=<image>`
/// works with the classic builder.
pub fn runtime_containerfile_with_init(
    metadata: &ArtifactMetadata,
    install_ca_certificates: bool,
    init_from: Option<&str>,
) -> Result<String> {
    let binary = &metadata.binary_name;
    let program = format!("/usr/local/bin/{binary}");
    let entrypoint = match init_from {
        Some(_) => serde_json::to_string(&[INIT_IN_IMAGE, "--", program.as_str()]),
        None => serde_json::to_string(&[program.as_str()]),
    }
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
    if let Some(builder) = init_from {
        text.push_str(&format!(
            "COPY --from={builder} {INIT_IN_BUILDER} {INIT_IN_IMAGE}\n"
        ));
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
    fn with_an_init_the_binary_runs_under_it() {
        let text =
            runtime_containerfile_with_init(&metadata(), false, Some("arca-builder:ab")).unwrap();
        assert!(
            text.contains(
                "COPY --from=arca-builder:ab /usr/bin/tini-static /usr/local/bin/arca-init\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "ENTRYPOINT [\"/usr/local/bin/arca-init\",\"--\",\"/usr/local/bin/hello\"]\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn runtime_recipe_skips_certificates_when_the_base_has_them() {
        let text = runtime_containerfile(&metadata(), false).unwrap();
        assert!(!text.contains("RUN"), "{text}");
        assert!(text.starts_with("FROM debian:12\nCOPY hello"));
    }

    #[test]
    fn builder_recipe_runs_the_script_then_checks_cargo_last() {
        let shape = crate::plan::BuilderShape {
            packages: vec!["make".into(), "protobuf-compiler".into()],
            toolchain: Some(crate::plan::PinnedToolchain {
                name: "1.96".into(),
                source: "/src/it's/rust-toolchain.toml".into(),
            }),
        };
        let text = builder_containerfile("rust:1", &shape);
        assert!(text.starts_with("FROM rust:1\n"), "{text}");
        assert!(
            text.contains("ARCA_PACKAGES='make protobuf-compiler' ARCA_TOOLCHAIN='1.96' ARCA_TOOLCHAIN_SOURCE='/src/it'\\''s/rust-toolchain.toml' sh /opt/arca/builder.sh\n"),
            "{text}"
        );
        let script = text.find("sh /opt/arca/builder.sh").unwrap();
        let check = text.rfind("RUN cargo --version").unwrap();
        assert!(script < check, "{text}");
        assert!(text.ends_with("exit 1; }\n"), "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn the_script_fails_on_pipes_and_downloads_to_checked_files() {
        assert!(BUILDER_SCRIPT.contains("set -o pipefail"));
        assert!(BUILDER_SCRIPT.contains("set -eu"));
        assert!(!BUILDER_SCRIPT.contains("| sh"));
        assert!(BUILDER_SCRIPT.contains("-o /tmp/rustup-init "));
        assert!(BUILDER_SCRIPT.contains("sha256sum /tmp/rustup-init"));
    }
}
