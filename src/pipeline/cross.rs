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
/// The cross builds' own target directory, inside a container build's
/// (they run beside the native build, which holds its directory's lock).
pub const CROSS_TARGET_SUBDIR: &str = "cross";

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
/// to cross-compile; else one `sh -c` that runs every platform's cargo at
/// once: the cross builds in the background, each in `cross_target_dir`
/// (a target directory of their own, so no cargo waits on another's lock)
/// with the target's cargo, its variables and `--target`, their output
/// kept aside; `primary` in the foreground, its output live. Then each
/// cross build's output follows its [`marker_line`], in order, so what
/// cargo says is read as that platform's. The first failure's status is
/// the command's (the primary's before any cross build's).
pub fn container_command(
    primary: &[String],
    cross: &[Platform],
    cross_target_dir: &str,
) -> Vec<String> {
    if cross.is_empty() {
        return primary.to_vec();
    }
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        concurrent_script(primary, cross, CONTAINER_TARGETS_DIR, cross_target_dir),
    ]
}

fn concurrent_script(
    primary: &[String],
    cross: &[Platform],
    targets_dir: &str,
    cross_target_dir: &str,
) -> String {
    let mut script = vec!["logs=$(mktemp -d) || exit 1".to_owned()];
    for (n, &platform) in cross.iter().enumerate() {
        let dir = format!("{targets_dir}/{}", platform.rust_target());
        let mut words: Vec<String> = vec![
            "env".to_owned(),
            format!("CARGO_TARGET_DIR={cross_target_dir}"),
        ];
        words.extend(
            cross_variables(platform, &format!("{dir}/rustc"))
                .into_iter()
                .map(|(name, value)| format!("{name}={value}")),
        );
        words.push(format!("{dir}/cargo"));
        words.extend(primary.iter().skip(1).cloned());
        words.push("--target".to_owned());
        words.push(platform.rust_target().to_owned());
        script.push(format!(
            "( {} >\"$logs/{n}.out\" 2>\"$logs/{n}.err\"; echo $? >\"$logs/{n}.status\" ) </dev/null &",
            shell_words(&words)
        ));
    }
    script.push("status=0".to_owned());
    script.push(format!("{} || status=$?", shell_words(primary)));
    script.push("wait".to_owned());
    script.push(r#"[ "$status" -eq 0 ] || { rm -rf "$logs"; exit "$status"; }"#.to_owned());
    for (n, &platform) in cross.iter().enumerate() {
        script.push(format!("echo {} >&2", shell_quote(&marker_line(platform))));
        script.push(format!(
            r#"cat "$logs/{n}.err" >&2; cat "$logs/{n}.out"; status=$(cat "$logs/{n}.status" 2>/dev/null || echo 1)"#
        ));
        script.push(r#"[ "$status" -eq 0 ] || { rm -rf "$logs"; exit "$status"; }"#.to_owned());
    }
    script.push(r#"rm -rf "$logs""#.to_owned());
    script.join("\n")
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
        assert_eq!(container_command(&primary, &[], "/c/cross"), primary);
    }

    /// Runs the script of `cross` with fake cargos that print `name` on
    /// stdout and stderr after `delay` s and exit `code`; returns (stdout,
    /// stderr, exit code, seconds).
    fn run_fake(primary: (f32, i32), arm: (f32, i32)) -> (String, String, i32, f64) {
        let dir = tempfile::tempdir().unwrap();
        let fake = |path: &Path, name: &str, (delay, code): (f32, i32)| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(
                path,
                format!(
                    "#!/bin/sh\necho \"{name} start $CARGO_TARGET_DIR $*\"\nsleep {delay}\necho {name} done\necho {name} err >&2\nexit {code}\n"
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let primary_cargo = dir.path().join("bin/cargo");
        fake(&primary_cargo, "native", primary);
        let targets = dir.path().join("targets");
        fake(
            &targets.join("aarch64-unknown-linux-gnu/cargo"),
            "arm64",
            arm,
        );
        let words: Vec<String> = vec![
            primary_cargo.display().to_string(),
            "build".into(),
            "--bin".into(),
            "x y".into(),
        ];
        let script = concurrent_script(
            &words,
            &[arm64()],
            &targets.display().to_string(),
            "/c/cross",
        );
        let started = std::time::Instant::now();
        let output = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            output.status.code().unwrap_or(-1),
            started.elapsed().as_secs_f64(),
        )
    }

    #[test]
    fn cross_builds_run_beside_the_primary_and_their_output_follows_their_marker() {
        let (stdout, stderr, code, seconds) = run_fake((1.0, 0), (1.0, 0));
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            seconds < 1.1,
            "the two builds ran one after the other: {seconds:.2} s"
        );
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [
                "native start  build --bin x y",
                "native done",
                "arm64 start /c/cross build --bin x y --target aarch64-unknown-linux-gnu",
                "arm64 done",
            ]
        );
        assert_eq!(
            stderr.lines().collect::<Vec<_>>(),
            [
                "native err",
                "arca: cross-compiling for linux/arm64 (aarch64-unknown-linux-gnu)",
                "arm64 err",
            ]
        );
        assert_eq!(marker_platform(&marker_line(arm64())), Some(arm64()));
        assert_eq!(marker_platform("   Compiling x"), None);
    }

    #[test]
    fn the_first_failure_is_the_commands_status() {
        // The primary's failure wins and the cross output is not shown.
        let (stdout, stderr, code, _) = run_fake((0.1, 101), (0.3, 0));
        assert_eq!(code, 101);
        assert!(
            !stdout.contains("arm64") && !stderr.contains("cross-compiling"),
            "{stdout}{stderr}"
        );
        // A cross failure comes after its marker, with its status.
        let (stdout, stderr, code, _) = run_fake((0.1, 0), (0.1, 7));
        assert_eq!(code, 7);
        assert!(stdout.contains("arm64 done"), "{stdout}");
        assert!(
            stderr.ends_with("linux/arm64 (aarch64-unknown-linux-gnu)\narm64 err\n"),
            "{stderr}"
        );
    }

    #[test]
    fn cross_binaries_land_under_the_triple() {
        assert_eq!(
            binary_path(Path::new("/t"), arm64(), "dev", "app"),
            Path::new("/t/aarch64-unknown-linux-gnu/debug/app")
        );
    }
}
