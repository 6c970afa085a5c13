//! The Containerfile of the cached builder image, valid for the engine's
//! classic builder (no BuildKit syntax), and where the optional static
//! init lives in the builder and in the runtime image. (The runtime image
//! itself is assembled by `crate::image`, not built from a Containerfile.)

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
RUN ARCA_PACKAGES={} ARCA_TOOLCHAIN={} ARCA_TOOLCHAIN_SOURCE={}{} sh /opt/arca/{BUILDER_SCRIPT_NAME}\n\
RUN cargo --version || {{ echo \"{}\" >&2; exit 1; }}\n",
        shell_quote(&shape.packages.join(" ")),
        shell_quote(&toolchain),
        shell_quote(&source),
        cross_variable(&shape.cross),
        CARGO_CHECK_FAILED,
    )
}

/// ` ARCA_CROSS='<triple>:<compiler>:<package>,<package> ...'`, or nothing
/// for a builder that cross-compiles for no platform (so the recipe line,
/// and the image, of every single-platform builder stay what they were).
fn cross_variable(cross: &[crate::platform::Platform]) -> String {
    if cross.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = cross
        .iter()
        .map(|platform| {
            format!(
                "{}:{}:{}",
                platform.rust_target(),
                platform.gnu_compiler(),
                platform.debian_cross_packages().join(",")
            )
        })
        .collect();
    format!(" ARCA_CROSS={}", shell_quote(&entries.join(" ")))
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

/// Where the image's static init comes from: the builder image, whose
/// recipe installed Debian's `tini` (its `/usr/bin/tini-static`) when
/// `[rust] init = true` (see [`crate::plan::INIT_PACKAGE`]).
pub const INIT_IN_BUILDER: &str = "/usr/bin/tini-static";
/// Where the init goes in the runtime image.
pub const INIT_IN_IMAGE: &str = "/usr/local/bin/arca-init";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_recipe_runs_the_script_then_checks_cargo_last() {
        let shape = crate::plan::BuilderShape {
            packages: vec!["make".into(), "protobuf-compiler".into()],
            toolchain: Some(crate::plan::PinnedToolchain {
                name: "1.96".into(),
                source: "/src/it's/rust-toolchain.toml".into(),
            }),
            cross: Vec::new(),
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
        assert!(!text.contains("ARCA_CROSS"), "{text}");
    }

    #[test]
    fn a_cross_compiling_builder_names_each_target_its_compiler_and_packages() {
        let shape = crate::plan::BuilderShape {
            cross: vec![crate::platform::Platform::parse("linux/arm64").unwrap()],
            ..Default::default()
        };
        let text = builder_containerfile("rust:1", &shape);
        assert!(
            text.contains(" ARCA_CROSS='aarch64-unknown-linux-gnu:aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu,libc6-dev-arm64-cross' sh /opt/arca/builder.sh\n"),
            "{text}"
        );
        assert!(BUILDER_SCRIPT.contains("rustup target add \"$triple\""));
        assert!(BUILDER_SCRIPT.contains("/opt/arca/targets/$triple/rustc"));
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
