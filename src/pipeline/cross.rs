//! Cross-compiling a crate's binary for the platforms beyond the builder's
//! own (`[rust] platforms`, `--platform`): the cargo runs of a container
//! build (the builder recipe linked `/opt/arca/targets/<triple>/{rustc,cargo}`
//! to a toolchain with the target's standard library and installed the C
//! cross compiler), the same tools found on the host for `--host-build`, and
//! where each binary lands (`<target dir>/<triple>/<profile>/<bin>`).
//!
//! No emulation: every binary is compiled by the builder's (or host's)
//! native compiler with `--target`.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use crate::plan;
use crate::platform::Platform;

/// Where the builder recipe links each target's toolchain.
pub const CONTAINER_TARGETS_DIR: &str = "/opt/arca/targets";

/// The line a container build prints on stderr before cross-compiling for
/// a platform, so what cargo says next is read as that platform's.
pub fn marker_line(platform: Platform) -> String {
    format!(
        "arca: cross-compiling for {platform} ({})",
        platform.rust_target()
    )
}

/// The platform a [`marker_line`] names.
pub fn marker_platform(line: &str) -> Option<Platform> {
    let rest = line.trim().strip_prefix("arca: cross-compiling for ")?;
    let name = rest.split_whitespace().next()?;
    Platform::parse(name).ok()
}

/// A binary built for one platform beyond the builder's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossBinary {
    pub platform: Platform,
    pub binary: PathBuf,
}

/// `<target dir>/<triple>/<profile dir>/<bin>`.
pub fn binary_path(target_dir: &Path, platform: Platform, profile: &str, bin: &str) -> PathBuf {
    target_dir
        .join(platform.rust_target())
        .join(plan::profile_output_dir(profile))
        .join(bin)
}

/// The variables of a cross cargo run: its rustc, the C compiler as linker
/// and for the `cc` crate.
pub fn cross_variables(platform: Platform, rustc: &str) -> Vec<(String, String)> {
    let mut env = vec![("RUSTC".to_owned(), rustc.to_owned())];
    env.extend(platform.cross_env());
    env
}

/// The command of a container build: `primary` alone when there is nothing
/// to cross-compile; else one `sh -c` running it, then for each platform
/// the [`marker_line`] and `primary` again with the target's cargo, its
/// variables and `--target`, stopping at the first failure.
pub fn container_command(primary: &[String], cross: &[Platform]) -> Vec<String> {
    if cross.is_empty() {
        return primary.to_vec();
    }
    let mut script = vec!["set -e".to_owned(), shell_words(primary)];
    for &platform in cross {
        let dir = format!("{CONTAINER_TARGETS_DIR}/{}", platform.rust_target());
        script.push(format!("echo {} >&2", shell_quote(&marker_line(platform))));
        let mut words: Vec<String> = vec!["env".to_owned()];
        words.extend(
            cross_variables(platform, &format!("{dir}/rustc"))
                .into_iter()
                .map(|(name, value)| format!("{name}={value}")),
        );
        words.push(format!("{dir}/cargo"));
        words.extend(primary.iter().skip(1).cloned());
        words.push("--target".to_owned());
        words.push(platform.rust_target().to_owned());
        script.push(shell_words(&words));
    }
    vec!["sh".to_owned(), "-c".to_owned(), script.join("\n")]
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_./=:,+@%".contains(ch))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The host's tools for cross-compiling to `platform` (`--host-build`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTools {
    pub cargo: PathBuf,
    pub rustc: PathBuf,
}

/// Finds the host's toolchain with `platform`'s standard library (the
/// default `rustc`, else a second one such as Debian's `/usr/bin/rustc`)
/// and its C cross compiler; the error says which is missing and how to
/// get it. Blocking (runs `rustc --print sysroot`).
pub fn host_tools(platform: Platform) -> Result<HostTools> {
    let target = platform.rust_target();
    let default = which("rustc").ok_or_else(|| anyhow!("No `rustc` on PATH."))?;
    let candidates = [
        default.clone(),
        PathBuf::from("/usr/bin/rustc"),
        PathBuf::from("/usr/local/bin/rustc"),
    ];
    let rustc = candidates
        .iter()
        .find(|rustc| has_target(rustc, target))
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "The host's Rust toolchain has no standard library for {target} (to build {platform}): \
                 run `rustup target add {target}`, or install Debian's `libstd-rust-dev:{}` \
                 (with `dpkg --add-architecture {}`) for its /usr/bin/rustc.",
                platform.debian_arch(),
                platform.debian_arch()
            )
        })?;
    let sibling = rustc.with_file_name("cargo");
    let cargo = if rustc != default && sibling.is_file() {
        sibling
    } else {
        which("cargo").ok_or_else(|| anyhow!("No `cargo` on PATH."))?
    };
    let compiler = platform.gnu_compiler();
    if which(&compiler).is_none() {
        bail!(
            "No C cross compiler `{compiler}` on the host (the linker for {platform}): install {}.",
            platform.debian_cross_packages().join(" and ")
        );
    }
    Ok(HostTools { cargo, rustc })
}

fn has_target(rustc: &Path, target: &str) -> bool {
    let Ok(output) = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
    else {
        return false;
    };
    if !output.status.success() {
        return false;
    }
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm64() -> Platform {
        Platform::parse("linux/arm64").unwrap()
    }

    #[test]
    fn without_cross_targets_the_command_is_cargo_alone() {
        let primary: Vec<String> = ["cargo", "build", "--bin", "x"].map(String::from).to_vec();
        assert_eq!(container_command(&primary, &[]), primary);
    }

    #[test]
    fn cross_targets_run_after_the_primary_build_with_their_tools() {
        let primary: Vec<String> = ["cargo", "build", "--features", "a b", "--bin", "x"]
            .map(String::from)
            .to_vec();
        let command = container_command(&primary, &[arm64()]);
        assert_eq!(command[..2], ["sh", "-c"]);
        let lines: Vec<&str> = command[2].lines().collect();
        assert_eq!(lines[0], "set -e");
        assert_eq!(lines[1], "cargo build --features 'a b' --bin x");
        assert_eq!(
            lines[2],
            "echo 'arca: cross-compiling for linux/arm64 (aarch64-unknown-linux-gnu)' >&2"
        );
        assert_eq!(
            lines[3],
            "env RUSTC=/opt/arca/targets/aarch64-unknown-linux-gnu/rustc \
             CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
             CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
             /opt/arca/targets/aarch64-unknown-linux-gnu/cargo build --features 'a b' --bin x \
             --target aarch64-unknown-linux-gnu"
        );
        assert_eq!(marker_platform(&marker_line(arm64())), Some(arm64()));
        assert_eq!(marker_platform("   Compiling x"), None);
    }

    #[test]
    fn cross_binaries_land_under_the_triple() {
        assert_eq!(
            binary_path(Path::new("/t"), arm64(), "dev", "app"),
            Path::new("/t/aarch64-unknown-linux-gnu/debug/app")
        );
    }
}
