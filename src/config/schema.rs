//! What `.arca/config.toml` may contain: the keys of the `[rust]` table with
//! their types and documentation, the built-in cargo profiles, and the
//! well-known base images offered by completion. The checker, completion and
//! hover all read this one table.

/// The only table Arca reads.
pub const RUST_TABLE: &str = "rust";

/// The type a key's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    String,
    StringArray,
    Bool,
    /// A table of string values (`env = { NAME = "value" }` or `[rust.env]`).
    StringTable,
}

impl ValueKind {
    /// How a message names the type, e.g. "a string".
    pub fn describe(self) -> &'static str {
        match self {
            ValueKind::String => "a string",
            ValueKind::StringArray => "an array of strings",
            ValueKind::Bool => "a boolean (true or false)",
            ValueKind::StringTable => "a table of strings",
        }
    }
}

/// One key of the `[rust]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub name: &'static str,
    pub kind: ValueKind,
    /// One line for completion details.
    pub summary: &'static str,
    /// Markdown for hover and completion documentation.
    pub doc: &'static str,
    /// A typical `key = value` line, used in messages and snippets.
    pub example: &'static str,
    /// Whether a build fails when the key is absent (`bin` is needed only
    /// for crates with several binaries).
    pub required: bool,
}

pub const PROFILE: KeySpec = KeySpec {
    name: "profile",
    kind: ValueKind::String,
    summary: "Cargo profile the binary is built with",
    doc: "**profile** — the Cargo profile the binary is built with (`cargo build --profile <profile>`).\n\n\
          One of the built-in profiles `dev`, `release`, `test`, `bench`, or a custom `[profile.<name>]` \
          of the workspace `Cargo.toml`.\n\n\
          ```toml\n[rust]\nprofile = \"release\"\n```\n\n\
          Set from the terminal with `arca build rust --profile release --set-default`.",
    example: "profile = \"release\"",
    required: true,
};

pub const FEATURES: KeySpec = KeySpec {
    name: "features",
    kind: ValueKind::StringArray,
    summary: "Cargo features enabled for the build",
    doc: "**features** — the Cargo features enabled for the build (`cargo build --features ...`).\n\n\
          Each entry is a feature the package declares in `[features]`, or an optional dependency's \
          implicit feature. `[]` is a valid, saved, empty set.\n\n\
          ```toml\n[rust]\nfeatures = [\"cli\", \"http\"]\n```\n\n\
          Set from the terminal with `arca build rust --features cli,http --set-default` \
          (`--features ''` saves an empty set).",
    example: "features = []",
    required: true,
};

pub const BIN: KeySpec = KeySpec {
    name: "bin",
    kind: ValueKind::String,
    summary: "Binary target packaged into the image",
    doc: "**bin** — the binary target to build and package (`cargo build --bin <bin>`).\n\n\
          Needed only when the crate has several binaries; a plain target name, not a path.\n\n\
          ```toml\n[rust]\nbin = \"server\"\n```\n\n\
          Set from the terminal with `arca build rust --bin server --set-default`.",
    example: "bin = \"server\"",
    required: false,
};

pub const BASE_IMAGE: KeySpec = KeySpec {
    name: "base_image",
    kind: ValueKind::String,
    summary: "Runtime base image the binary is copied into",
    doc: "**base_image** — the runtime base image; the binary is copied into it and becomes its \
          entrypoint.\n\n\
          The binary is compiled in a builder image made from the same base, except that \
          `nvidia/cuda:<version>-base-<os>` and `-runtime-` images build in the matching \
          `-devel-` image (which has the CUDA toolkit).\n\n\
          ```toml\n[rust]\nbase_image = \"debian:bookworm-slim\"\n```\n\n\
          Set from the terminal with `arca build rust --base-image debian:bookworm-slim --set-default`.",
    example: "base_image = \"debian:bookworm-slim\"",
    required: true,
};

pub const PACKAGES: KeySpec = KeySpec {
    name: "packages",
    kind: ValueKind::StringArray,
    summary: "Extra system packages installed into the builder image",
    doc: "**packages** — extra system packages the builder image installs with the base image's \
          package manager (apt-get, dnf, microdnf or apk), for build scripts that need tools or \
          libraries: `make`, `cmake`, `protobuf-compiler`, `libssl-dev`, `git`, ...\n\n\
          Part of the builder image's cache key: changing the list builds a new builder once. \
          Only in the builder; the runtime image gets none of them.\n\n\
          ```toml\n[rust]\npackages = [\"make\", \"cmake\"]\n```",
    example: "packages = [\"make\"]",
    required: false,
};

pub const TOOLCHAIN: KeySpec = KeySpec {
    name: "toolchain",
    kind: ValueKind::String,
    summary: "Rust toolchain the builder uses (overrides rust-toolchain.toml)",
    doc: "**toolchain** — the Rust toolchain the binary is built with: `1.96`, `1.96.0`, `stable`, \
          `nightly-2026-05-01`.\n\n\
          Without it, a `rust-toolchain.toml` (or `rust-toolchain`) of the crate or workspace pins the \
          toolchain; without either, the builder's own toolchain is used. A pinned toolchain the builder \
          lacks is installed by the builder recipe (rustup), which needs network access to \
          static.rust-lang.org; where that is unreachable the build stops with an error naming the \
          toolchain and the file that pinned it. Part of the builder image's cache key.\n\n\
          ```toml\n[rust]\ntoolchain = \"1.96\"\n```",
    example: "toolchain = \"1.96\"",
    required: false,
};

pub const ENV: KeySpec = KeySpec {
    name: "env",
    kind: ValueKind::StringTable,
    summary: "Extra environment variables for the cargo build",
    doc: "**env** — extra environment variables set for `cargo build` in the builder container \
          (e.g. `RUSTFLAGS`, `CFLAGS`, a build script's switches). Not put into the image.\n\n\
          Names are letters, digits and `_`; Arca's own variables (`CARGO_HOME`, `CARGO_TARGET_DIR`, \
          `HOME`) cannot be replaced. A digest of the names and values is part of the image's \
          fingerprint (a change makes it stale); the values themselves are not recorded.\n\n\
          ```toml\n[rust]\nenv = { RUSTFLAGS = \"-C target-cpu=x86-64-v2\" }\n```",
    example: "env = { RUSTFLAGS = \"-C target-cpu=x86-64-v2\" }",
    required: false,
};

pub const PROXY: KeySpec = KeySpec {
    name: "proxy",
    kind: ValueKind::Bool,
    summary: "Pass the host's HTTP(S)_PROXY/NO_PROXY into builds (default true)",
    doc: "**proxy** — whether the host's `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` and `ALL_PROXY` \
          (both cases) are passed into the builder recipe and the cargo build. Default `true`; \
          `false` builds without them.\n\n\
          The host's CA bundle is always mounted read-only and named to cargo and curl, so a \
          TLS-intercepting proxy the host trusts works in builds too.\n\n\
          ```toml\n[rust]\nproxy = false\n```",
    example: "proxy = false",
    required: false,
};

pub const PLATFORMS: KeySpec = KeySpec {
    name: "platforms",
    kind: ValueKind::StringArray,
    summary: "Platforms the image is built for (cross-compiled, one OCI index)",
    doc: "**platforms** — the platforms the image is built for: `linux/amd64`, `linux/arm64`, \
          `linux/arm/v7`, `linux/386`, `linux/ppc64le`, `linux/s390x`, `linux/riscv64`. Default: the \
          engine's platform only.\n\n\
          Every binary is cross-compiled in the one builder (`cargo build --target <triple>`, no \
          emulation): the builder recipe adds the Rust target (rustup, or a Debian `rustc` that has \
          its standard library) and the GNU C cross compiler (`gcc-aarch64-linux-gnu`, ...). The \
          runtime base is taken per platform from its image index. The engine gets the image of its \
          own platform; the artifact's OCI layout and `arca push` hold an image index of all of them.\n\n\
          ```toml\n[rust]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n```\n\n\
          Override once with `arca build rust --platform linux/arm64`.",
    example: "platforms = [\"linux/amd64\", \"linux/arm64\"]",
    required: false,
};

pub const INIT: KeySpec = KeySpec {
    name: "init",
    kind: ValueKind::Bool,
    summary: "Wrap the entrypoint in a small static init (tini) inside the image",
    doc: "**init** — `true` puts a small static init (`tini`) into the runtime image as the \
          entrypoint wrapper, so the binary is not PID 1: signals reach it and `docker stop` is \
          prompt wherever the image runs. Default `false`.\n\n\
          Containers Arca itself starts always use the engine's init; `docker run --init` does \
          the same for an image without it. Choose `init = true` for images run by tools that \
          do not add an init (Kubernetes, plain `docker run`).\n\n\
          The init is Debian's `tini-static`, installed into the builder (`tini` joins its \
          packages) and copied to `/usr/local/bin/arca-init` in the binary's layer.\n\n\
          ```toml\n[rust]\ninit = true\n```",
    example: "init = true",
    required: false,
};

pub const PUSH_TO: KeySpec = KeySpec {
    name: "push_to",
    kind: ValueKind::String,
    summary: "Registry and repository `arca push` sends the image to",
    doc: "**push_to** — where `arca push` (and the editor's Push Image command) sends this crate's \
          image when no `--to` is given: `REGISTRY/REPOSITORY[:TAG]`.\n\n\
          Without a tag, the artifact's own tag (`<crate>-<artifact id>`) is used. Credentials come \
          from `docker login` / `podman login`; loopback registries may speak plain HTTP.\n\n\
          ```toml\n[rust]\npush_to = \"registry.example.com/team/demo\"\n```",
    example: "push_to = \"registry.example.com/team/demo\"",
    required: false,
};

/// Every key of `[rust]`, in the order the documentation and completion list
/// them.
pub const RUST_KEYS: [KeySpec; 11] = [
    PROFILE, FEATURES, BIN, BASE_IMAGE, PACKAGES, TOOLCHAIN, ENV, PROXY, INIT, PLATFORMS, PUSH_TO,
];

/// The spec of a `[rust]` key.
pub fn key(name: &str) -> Option<&'static KeySpec> {
    RUST_KEYS.iter().find(|spec| spec.name == name)
}

/// The JSON-schema pattern of `push_to` (the checker's full grammar is
/// [`crate::config::image_ref`]; this catches the common slips in editors
/// without the language server).
pub const PUSH_TO_PATTERN: &str = "^[^@\\s]+$";

/// Markdown for the `[rust]` table itself.
pub const RUST_TABLE_DOC: &str = "**[rust]** — how Arca builds this crate into an image.\n\n\
     Keys: `profile`, `features`, `base_image` (all needed for a build) and `bin` (needed when the \
     crate has several binaries); for shaping the builder `packages`, `toolchain`, `env`, \
     `proxy`, and `init` for the image; `platforms` (the platforms the image is built for); and \
     `push_to` (where `arca push` sends the image). Command arguments override these values; \
     `arca build rust ... --set-default` saves them here.";

/// A built-in Cargo profile with its one-line description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileSpec {
    pub name: &'static str,
    pub doc: &'static str,
}

/// The profiles Cargo knows without a `[profile.X]` table (the same names as
/// [`crate::workspace::BUILT_IN_PROFILES`]).
pub const BUILT_IN_PROFILES: [ProfileSpec; 4] = [
    ProfileSpec {
        name: "dev",
        doc: "Unoptimized with debug info; fast to compile (output in target/debug).",
    },
    ProfileSpec {
        name: "release",
        doc: "Optimized, without debug assertions; what images usually ship.",
    },
    ProfileSpec {
        name: "test",
        doc: "Inherits dev; the profile `cargo test` uses.",
    },
    ProfileSpec {
        name: "bench",
        doc: "Inherits release; the profile `cargo bench` uses.",
    },
];

/// The built-in profile named `name`.
pub fn built_in_profile(name: &str) -> Option<&'static ProfileSpec> {
    BUILT_IN_PROFILES
        .iter()
        .find(|profile| profile.name == name)
}

/// A base image offered by completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WellKnownImage {
    pub reference: String,
    pub doc: String,
}

/// CUDA versions offered for `nvidia/cuda` images, newest first.
pub const CUDA_VERSIONS: [&str; 4] = ["13.0.0", "12.8.1", "12.6.3", "12.4.1"];
/// Operating system suffixes of `nvidia/cuda` tags.
pub const CUDA_OS: [&str; 2] = ["ubuntu24.04", "ubuntu22.04"];

const GENERAL_IMAGES: [(&str, &str); 10] = [
    (
        "debian:bookworm-slim",
        "Debian 12, slim: glibc and a shell; a safe default for Rust binaries.",
    ),
    ("debian:trixie-slim", "Debian 13, slim."),
    ("ubuntu:24.04", "Ubuntu 24.04 LTS."),
    ("ubuntu:22.04", "Ubuntu 22.04 LTS."),
    (
        "gcr.io/distroless/cc-debian12",
        "Distroless with glibc and libgcc, no shell: small and minimal for dynamically linked Rust binaries.",
    ),
    (
        "gcr.io/distroless/static-debian12",
        "Distroless without libc: only for fully static (musl) binaries.",
    ),
    (
        "alpine:3.20",
        "Alpine Linux (musl): the binary must be built for musl to run here.",
    ),
    (
        "busybox",
        "BusyBox: tiny, for static binaries; glibc binaries need `busybox:glibc`.",
    ),
    (
        "rust:1-slim-bookworm",
        "The official Rust image on Debian 12: builds in itself, large as a runtime.",
    ),
    ("fedora:41", "Fedora 41."),
];

/// Well-known base images: general-purpose ones, then `nvidia/cuda`
/// runtime, base and devel tags for a few CUDA versions and OS releases.
pub fn well_known_images() -> Vec<WellKnownImage> {
    let mut images: Vec<WellKnownImage> = GENERAL_IMAGES
        .iter()
        .map(|(reference, doc)| WellKnownImage {
            reference: (*reference).to_owned(),
            doc: (*doc).to_owned(),
        })
        .collect();
    for version in CUDA_VERSIONS {
        for os in CUDA_OS {
            for (flavour, doc) in [
                (
                    "runtime",
                    "CUDA runtime libraries; the binary is built in the matching `-devel-` image.",
                ),
                (
                    "base",
                    "Minimal CUDA (cudart only); the binary is built in the matching `-devel-` image.",
                ),
                (
                    "devel",
                    "Full CUDA toolkit; large as a runtime, builds in itself.",
                ),
            ] {
                images.push(WellKnownImage {
                    reference: format!("nvidia/cuda:{version}-{flavour}-{os}"),
                    doc: format!("NVIDIA CUDA {version} {flavour} on {os}. {doc}"),
                });
            }
        }
    }
    images
}

/// A JSON Schema (draft-07) of `.arca/config.toml`, built from the same
/// key table, for editors' TOML validation (e.g. VS Code `tomlValidation`).
pub fn json_schema() -> serde_json::Value {
    let mut properties = serde_json::Map::new();
    for spec in RUST_KEYS {
        let mut property = match spec.kind {
            ValueKind::String => serde_json::json!({ "type": "string", "minLength": 1 }),
            ValueKind::StringArray => serde_json::json!({
                "type": "array",
                "items": { "type": "string" }
            }),
            ValueKind::Bool => serde_json::json!({ "type": "boolean" }),
            ValueKind::StringTable => serde_json::json!({
                "type": "object",
                "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
                "additionalProperties": { "type": "string" }
            }),
        };
        property["description"] = spec.summary.into();
        property["markdownDescription"] = spec.doc.into();
        match spec.name {
            "profile" => {
                property["examples"] = BUILT_IN_PROFILES
                    .iter()
                    .map(|profile| profile.name)
                    .collect::<Vec<_>>()
                    .into();
            }
            "base_image" => {
                property["examples"] = well_known_images()
                    .into_iter()
                    .map(|image| image.reference)
                    .collect::<Vec<_>>()
                    .into();
            }
            "bin" => {
                property["pattern"] = "^[^/\\\\]+$".into();
            }
            "packages" => {
                property["items"]["pattern"] = "^[A-Za-z0-9][A-Za-z0-9.+_:=~-]*$".into();
            }
            "toolchain" => {
                property["examples"] = serde_json::json!(["stable", "1.96", "nightly-2026-05-01"]);
            }
            "platforms" => {
                // The names as Arca writes them (what completion offers); a
                // validator of this schema flags the other spellings the
                // checker accepts and normalizes (`linux/arm64/v8`).
                property["items"]["enum"] = crate::platform::Platform::names().into();
                property["uniqueItems"] = true.into();
                property["examples"] = serde_json::json!([["linux/amd64", "linux/arm64"]]);
            }
            "push_to" => {
                // REGISTRY/REPOSITORY[:TAG]: lowercase path, no digest.
                property["pattern"] = PUSH_TO_PATTERN.into();
                property["examples"] =
                    serde_json::json!(["localhost:5000/demo", "ghcr.io/OWNER/demo:latest"]);
            }
            _ => {}
        }
        properties.insert(spec.name.to_owned(), property);
    }
    serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Arca crate configuration (.arca/config.toml)",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            RUST_TABLE: {
                "type": "object",
                "description": "How Arca builds this crate into an image.",
                "markdownDescription": RUST_TABLE_DOC,
                "additionalProperties": false,
                "properties": properties
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::image_ref;

    #[test]
    fn every_well_known_image_is_a_valid_reference() {
        let images = well_known_images();
        assert!(
            images
                .iter()
                .any(|image| image.reference == "nvidia/cuda:12.8.1-runtime-ubuntu24.04")
        );
        for image in images {
            image_ref::parse(&image.reference)
                .unwrap_or_else(|reason| panic!("{}: {reason}", image.reference));
        }
    }

    #[test]
    fn built_in_profiles_match_the_workspace_list() {
        let names: Vec<&str> = BUILT_IN_PROFILES
            .iter()
            .map(|profile| profile.name)
            .collect();
        assert_eq!(names, crate::workspace::BUILT_IN_PROFILES);
    }

    #[test]
    fn keys_are_found_by_name_and_examples_name_their_key() {
        for spec in RUST_KEYS {
            assert_eq!(key(spec.name), Some(&spec));
            assert!(spec.example.starts_with(spec.name));
            assert!(spec.doc.contains(spec.name));
        }
        assert_eq!(key("profle"), None);
    }

    #[test]
    fn the_json_schema_lists_every_key_with_its_type() {
        let schema = json_schema();
        let rust = &schema["properties"]["rust"];
        assert_eq!(rust["additionalProperties"], false);
        for spec in RUST_KEYS {
            let property = &rust["properties"][spec.name];
            let expected = match spec.kind {
                ValueKind::String => "string",
                ValueKind::StringArray => "array",
                ValueKind::Bool => "boolean",
                ValueKind::StringTable => "object",
            };
            assert_eq!(property["type"], expected, "{}", spec.name);
            assert_eq!(property["markdownDescription"], spec.doc);
        }
        assert_eq!(rust["properties"]["bin"]["pattern"], "^[^/\\\\]+$");
        assert_eq!(
            rust["properties"]["platforms"]["items"]["enum"],
            serde_json::json!(crate::platform::Platform::names())
        );
        assert_eq!(rust["properties"]["platforms"]["uniqueItems"], true);
        assert!(
            rust["properties"]["base_image"]["examples"]
                .as_array()
                .is_some_and(|examples| examples
                    .iter()
                    .any(|image| image == "nvidia/cuda:12.8.1-runtime-ubuntu24.04"))
        );
    }
}

#[cfg(test)]
mod push_to_tests {
    use super::*;

    #[test]
    fn the_vscode_schema_names_every_key_of_the_table() {
        let text = include_str!("../../editors/vscode/schemas/arca-config.schema.json");
        let schema: serde_json::Value = serde_json::from_str(text).unwrap();
        let properties = &schema["properties"][RUST_TABLE]["properties"];
        for spec in RUST_KEYS {
            assert!(properties[spec.name].is_object(), "{} missing", spec.name);
        }
        assert_eq!(properties["push_to"]["pattern"], PUSH_TO_PATTERN);
        assert_eq!(
            properties["platforms"]["items"]["enum"],
            json_schema()["properties"]["rust"]["properties"]["platforms"]["items"]["enum"]
        );
        assert_eq!(
            json_schema()["properties"]["rust"]["properties"]["push_to"]["pattern"],
            PUSH_TO_PATTERN
        );
    }
}
