//! Image platforms (`linux/amd64`, `linux/arm64`, ...): parsing with a
//! clear error, the OCI names an index spells, and what cross-compiling
//! for one takes (the Rust target triple, the GNU C toolchain's prefix and
//! Debian's names for its packages).
//!
//! A leaf module: the config checker, the build plan, the builder recipe,
//! the registry's platform choice and image assembly all use it.

use std::fmt;

/// One platform an image is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    known: &'static Known,
}

/// What Arca knows of a platform it can build for.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Known {
    /// `linux/arm64`, `linux/arm/v7`: how the config and `--platform` spell it.
    name: &'static str,
    /// The OCI `architecture` and `variant` (as image indexes spell them).
    architecture: &'static str,
    variant: Option<&'static str>,
    /// The Rust target triple cargo builds with.
    rust_target: &'static str,
    /// The GNU toolchain prefix (`aarch64-linux-gnu`, as in `aarch64-linux-gnu-gcc`).
    gnu_prefix: &'static str,
    /// Debian's architecture name (`arm64`, `armhf`).
    debian_arch: &'static str,
    /// `std::env::consts::ARCH` of a machine of this platform.
    host_arch: &'static str,
}

/// Every platform Arca builds for, in the order it lists them.
const KNOWN: &[Known] = &[
    Known {
        name: "linux/amd64",
        architecture: "amd64",
        variant: None,
        rust_target: "x86_64-unknown-linux-gnu",
        gnu_prefix: "x86_64-linux-gnu",
        debian_arch: "amd64",
        host_arch: "x86_64",
    },
    Known {
        name: "linux/arm64",
        architecture: "arm64",
        variant: None,
        rust_target: "aarch64-unknown-linux-gnu",
        gnu_prefix: "aarch64-linux-gnu",
        debian_arch: "arm64",
        host_arch: "aarch64",
    },
    Known {
        name: "linux/arm/v7",
        architecture: "arm",
        variant: Some("v7"),
        rust_target: "armv7-unknown-linux-gnueabihf",
        gnu_prefix: "arm-linux-gnueabihf",
        debian_arch: "armhf",
        host_arch: "arm",
    },
    Known {
        name: "linux/386",
        architecture: "386",
        variant: None,
        rust_target: "i686-unknown-linux-gnu",
        gnu_prefix: "i686-linux-gnu",
        debian_arch: "i386",
        host_arch: "x86",
    },
    Known {
        name: "linux/ppc64le",
        architecture: "ppc64le",
        variant: None,
        rust_target: "powerpc64le-unknown-linux-gnu",
        gnu_prefix: "powerpc64le-linux-gnu",
        debian_arch: "ppc64el",
        host_arch: "powerpc64",
    },
    Known {
        name: "linux/s390x",
        architecture: "s390x",
        variant: None,
        rust_target: "s390x-unknown-linux-gnu",
        gnu_prefix: "s390x-linux-gnu",
        debian_arch: "s390x",
        host_arch: "s390x",
    },
    Known {
        name: "linux/riscv64",
        architecture: "riscv64",
        variant: None,
        rust_target: "riscv64gc-unknown-linux-gnu",
        gnu_prefix: "riscv64-linux-gnu",
        debian_arch: "riscv64",
        host_arch: "riscv64",
    },
];

/// Why a platform string was refused: the message, and the closest known
/// name when there is one (for a quick fix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError {
    pub message: String,
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlatformError {}

impl Platform {
    /// Every platform Arca builds for.
    pub fn all() -> impl Iterator<Item = Platform> {
        KNOWN.iter().map(|known| Platform { known })
    }

    /// Every platform's name, for messages and completion.
    pub fn names() -> Vec<&'static str> {
        KNOWN.iter().map(|known| known.name).collect()
    }

    /// Parses `os/arch[/variant]` (`linux/arm64/v8` is `linux/arm64`, as
    /// Docker and containerd normalize it; `linux/arm` is `linux/arm/v7`).
    pub fn parse(text: &str) -> Result<Platform, PlatformError> {
        let trimmed = text.trim();
        let normalized = match trimmed.to_ascii_lowercase().as_str() {
            "linux/arm64/v8" | "linux/aarch64" => "linux/arm64".to_owned(),
            "linux/x86_64" | "linux/amd64/v1" => "linux/amd64".to_owned(),
            "linux/arm" => "linux/arm/v7".to_owned(),
            other => other.to_owned(),
        };
        if let Some(known) = KNOWN.iter().find(|known| known.name == normalized) {
            return Ok(Platform { known });
        }
        let shown = trimmed.escape_debug().to_string();
        // A bare architecture (`arm64`) means that Linux platform.
        let bare = (!normalized.contains('/') && !normalized.is_empty())
            .then(|| Platform::parse(&format!("linux/{normalized}")).ok())
            .flatten()
            .map(Platform::name);
        let suggestion = bare.or_else(|| {
            KNOWN
                .iter()
                .map(|known| (strsim::jaro_winkler(&normalized, known.name), known.name))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, name)| name)
        });
        let os = normalized.split('/').next().unwrap_or_default();
        let what = if !normalized.contains('/') {
            format!("`{shown}` is not a platform: write it as OS/ARCH, e.g. `linux/arm64`")
        } else if os != "linux" {
            format!("Arca builds Linux images only; `{shown}` names another OS")
        } else {
            format!("Arca cannot build for the platform `{shown}`")
        };
        let mut message = format!("{what}. Valid platforms: {}.", Self::names().join(", "));
        if let Some(name) = suggestion {
            message.push_str(&format!(" Did you mean `{name}`?"));
        }
        Err(PlatformError {
            message,
            suggestion,
        })
    }

    /// An optional platform given as `option` (the CLI's `--platform`, a
    /// server command's `platform`), parsed; the error names the option.
    pub fn parse_option(text: Option<&str>, option: &str) -> anyhow::Result<Option<Platform>> {
        text.map(Platform::parse)
            .transpose()
            .map_err(|error| anyhow::anyhow!("{error} (in `{option}`)"))
    }

    /// The platform of this machine (where the builder and a local engine
    /// run); `linux/amd64` on an architecture Arca does not know.
    pub fn host() -> Platform {
        Self::from_host_arch(std::env::consts::ARCH).unwrap_or(Platform { known: &KNOWN[0] })
    }

    /// The platform of a machine whose `std::env::consts::ARCH` (or
    /// `uname -m`, for `x86_64`/`aarch64`) is `arch`.
    pub fn from_host_arch(arch: &str) -> Option<Platform> {
        let arch = match arch {
            "arm64" => "aarch64",
            "amd64" => "x86_64",
            other => other,
        };
        KNOWN
            .iter()
            .find(|known| known.host_arch == arch)
            .map(|known| Platform { known })
    }

    /// The platform an OCI index entry or image config names, if Arca
    /// knows it (`variant` `v8` of arm64 is arm64).
    pub fn from_oci(os: &str, architecture: &str, variant: Option<&str>) -> Option<Platform> {
        if os != "linux" {
            return None;
        }
        KNOWN
            .iter()
            .find(|known| {
                known.architecture == architecture
                    && match (known.variant, variant) {
                        (Some(want), Some(have)) => want == have,
                        (Some(_), None) => true,
                        (None, None) => true,
                        (None, Some(have)) => architecture == "arm64" && have == "v8",
                    }
            })
            .map(|known| Platform { known })
    }

    /// `linux/arm64`.
    pub fn name(self) -> &'static str {
        self.known.name
    }
    /// The OCI `os`: always `linux`.
    pub fn os(self) -> &'static str {
        "linux"
    }
    /// The OCI `architecture`: `amd64`, `arm64`, `arm`.
    pub fn architecture(self) -> &'static str {
        self.known.architecture
    }
    /// The OCI `variant`, for the platforms that have one (`v7`).
    pub fn variant(self) -> Option<&'static str> {
        self.known.variant
    }
    /// The Rust target triple: `aarch64-unknown-linux-gnu`.
    pub fn rust_target(self) -> &'static str {
        self.known.rust_target
    }
    /// The GNU C compiler for this platform: `aarch64-linux-gnu-gcc`.
    pub fn gnu_compiler(self) -> String {
        format!("{}-gcc", self.known.gnu_prefix)
    }
    /// Debian's cross packages giving that compiler and the platform's C
    /// library: `gcc-aarch64-linux-gnu libc6-dev-arm64-cross` (package
    /// names spell `_` as `-`: `gcc-x86-64-linux-gnu` on an arm64 builder).
    pub fn debian_cross_packages(self) -> [String; 2] {
        [
            format!("gcc-{}", self.known.gnu_prefix.replace('_', "-")),
            format!("libc6-dev-{}-cross", self.known.debian_arch),
        ]
    }
    /// Debian's architecture name: `arm64`, `armhf`.
    pub fn debian_arch(self) -> &'static str {
        self.known.debian_arch
    }
    /// The variables naming the cross C compiler to cargo (its linker) and
    /// to the `cc` crate: `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER`
    /// and `CC_aarch64_unknown_linux_gnu`, both `aarch64-linux-gnu-gcc`.
    pub fn cross_env(self) -> [(String, String); 2] {
        let target = self.rust_target();
        let compiler = self.gnu_compiler();
        [
            (
                format!(
                    "CARGO_TARGET_{}_LINKER",
                    target.to_ascii_uppercase().replace('-', "_")
                ),
                compiler.clone(),
            ),
            (format!("CC_{}", target.replace('-', "_")), compiler),
        ]
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a list of platforms (each entry may hold several split by commas,
/// as `--platform linux/amd64,linux/arm64`), sorted and without duplicates.
pub fn parse_list<S: AsRef<str>>(values: &[S]) -> Result<Vec<Platform>, PlatformError> {
    let mut platforms = Vec::new();
    for value in values {
        for part in value.as_ref().split(',') {
            if part.trim().is_empty() {
                continue;
            }
            platforms.push(Platform::parse(part)?);
        }
    }
    platforms.sort();
    platforms.dedup();
    Ok(platforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_in_the_spellings_engines_accept() {
        assert_eq!(
            Platform::parse("linux/arm64").unwrap().name(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse(" linux/arm64/v8 ").unwrap().name(),
            "linux/arm64"
        );
        assert_eq!(Platform::parse("linux/arm").unwrap().name(), "linux/arm/v7");
        assert_eq!(
            Platform::parse("LINUX/AMD64").unwrap().rust_target(),
            "x86_64-unknown-linux-gnu"
        );
    }

    #[test]
    fn an_unknown_platform_names_the_valid_ones_and_the_closest() {
        let error = Platform::parse("linux/amr64").unwrap_err();
        assert_eq!(error.suggestion, Some("linux/arm64"));
        assert!(
            error.message.contains("linux/amd64, linux/arm64"),
            "{error}"
        );
        assert!(
            error.message.contains("Did you mean `linux/arm64`?"),
            "{error}"
        );
        let other_os = Platform::parse("windows/amd64").unwrap_err();
        assert!(other_os.message.contains("Linux images only"), "{other_os}");
        assert_eq!(
            Platform::parse("arm64").unwrap_err().suggestion,
            Some("linux/arm64")
        );
        let bare = Platform::parse("arm64\u{1b}").unwrap_err();
        assert!(
            bare.message.contains("`arm64\\u{1b}` is not a platform"),
            "{bare}"
        );
    }

    #[test]
    fn cross_settings_follow_the_gnu_and_debian_names() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(arm64.gnu_compiler(), "aarch64-linux-gnu-gcc");
        assert_eq!(
            arm64.debian_cross_packages(),
            ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"]
        );
        // Debian spells the underscore of `x86_64` as `-` in package names
        // (`apt-cache policy gcc-x86-64-linux-gnu`: built for arm64 hosts).
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(amd64.gnu_compiler(), "x86_64-linux-gnu-gcc");
        assert_eq!(
            amd64.debian_cross_packages(),
            ["gcc-x86-64-linux-gnu", "libc6-dev-amd64-cross"]
        );
        assert_eq!(
            arm64.cross_env(),
            [
                (
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER".to_owned(),
                    "aarch64-linux-gnu-gcc".to_owned()
                ),
                (
                    "CC_aarch64_unknown_linux_gnu".to_owned(),
                    "aarch64-linux-gnu-gcc".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn oci_names_map_back_including_arm64_v8() {
        assert_eq!(
            Platform::from_oci("linux", "arm64", Some("v8")).map(Platform::name),
            Some("linux/arm64")
        );
        assert_eq!(
            Platform::from_oci("linux", "arm", Some("v7")).map(Platform::name),
            Some("linux/arm/v7")
        );
        assert_eq!(Platform::from_oci("linux", "arm", Some("v6")), None);
        assert_eq!(Platform::from_oci("windows", "amd64", None), None);
        assert_eq!(
            Platform::from_host_arch("x86_64").map(Platform::name),
            Some("linux/amd64")
        );
    }

    #[test]
    fn lists_split_commas_sort_and_dedup() {
        let list = parse_list(&["linux/arm64,linux/amd64", "linux/arm64/v8", ""]).unwrap();
        let names: Vec<&str> = list.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64"]);
        assert!(parse_list(&["linux/amd64,bogus"]).is_err());
    }
}
