//! Real crates with crates.io dependencies, built in the builder container
//! on this machine (issue 10): downloads go through whatever network the
//! host has (here a TLS-intercepting proxy only the host CA bundle
//! trusts), so the CA path is exercised for real.
//!
//! Fixtures (`tests/fixtures/real-crates`): `c-build` (a build script
//! compiling C through `cc`), `make-build` (a build script running `make`,
//! installed by `[rust] packages`, declaring no `rerun-if-changed`, with an
//! `exclude`d directory), `ws` (a workspace member with a path
//! dependency), `no-lock` (no Cargo.lock), `two-bins` (two binaries).
//!
//! Each: build, run the image, then a matrix of edits judged against
//! cargo's own verdict: after each edit the host's `cargo build
//! --message-format=json` says whether the binary's compile unit is
//! `fresh`, and `arca status` must agree (fresh ⇔ fresh). Then a one-line
//! change is rebuilt and the new image runs. The broken-recipe case (an
//! unreachable download) leaves no builder tag.
//!
//! Cargo downloads are cached across tests and runs in a shared cargo home
//! (`ARCA_TEST_CARGO_CACHE`, default `/var/cache/arca-crates/cargo-home`
//! when writable), linked into each test's private `ARCA_HOME`.
//!
//! Needs `.ci/docker-up.sh` and `.ci/fixtures.sh`; without an engine each
//! test prints a note and passes, unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;

use std::path::{Path, PathBuf};
use std::process::Command;

use docker::{DockerTest, text};

/// One edit of the matrix: a file (relative to the copy's root), how to
/// change it, and a label for the report.
struct Edit {
    label: &'static str,
    path: &'static str,
    change: fn(&str) -> String,
}

fn append_line(text: &str) -> String {
    format!("{text}one more line\n")
}

fn append_blank_line(text: &str) -> String {
    format!("{text}\n")
}

fn append_test(text: &str) -> String {
    format!("{text}\n#[test]\nfn another() {{}}\n")
}

fn append_comment(text: &str) -> String {
    format!("{text}\n// one more line\n")
}

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-crates")
}

struct RealCrate {
    test: DockerTest,
    /// The copy's root (the workspace root for `ws`).
    root: PathBuf,
    bin: String,
    host_target: PathBuf,
}

impl RealCrate {
    fn new(name: &str, member: &str, bin: &str) -> Option<Self> {
        let test = DockerTest::with_crate(&fixture_root().join(name), name, member)?;
        let rust_cache = test.home.path().join("cache/rust");
        std::fs::create_dir_all(&rust_cache).expect("rust cache");
        std::os::unix::fs::symlink(docker::shared_cargo_home(), rust_cache.join("cargo-home"))
            .expect("link the shared cargo home");
        let root = test.work.path().join(name).canonicalize().expect("root");
        let host_target = test.work.path().join("host-target");
        Some(Self {
            test,
            root,
            bin: bin.to_owned(),
            host_target,
        })
    }

    fn build(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["--bin", self.bin.as_str()];
        args.extend_from_slice(extra);
        self.test.build_cli(&args, None)
    }

    /// `arca status --json` of the crate.
    fn status(&self) -> serde_json::Value {
        let output = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["status", "--json"])
            .arg(&self.test.crate_dir)
            .env("ARCA_HOME", self.test.home.path())
            .output()
            .expect("arca status");
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", text(&output)))
    }

    /// Cargo's verdict: the host build's `fresh` for the binary's compile
    /// unit (the ground truth of the matrix).
    fn cargo_fresh(&self) -> bool {
        let output = Command::new("cargo")
            .args(["build", "--locked", "--release", "--message-format=json"])
            .args(["--bin", &self.bin])
            .arg("--manifest-path")
            .arg(self.test.crate_dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.host_target)
            .output()
            .expect("host cargo");
        assert!(output.status.success(), "host cargo: {}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|message| {
                message["reason"] == "compiler-artifact"
                    && message["target"]["name"] == self.bin.as_str()
                    && message["target"]["kind"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
            })
            .and_then(|message| message["fresh"].as_bool())
            .unwrap_or_else(|| panic!("no compile unit of `{}` in\n{stdout}", self.bin))
    }

    /// Applies each edit, compares cargo's verdict with `arca status`,
    /// reverts it. Returns `(label, cargo fresh, arca state, reasons)` rows;
    /// panics on the first disagreement.
    fn matrix(&self, edits: &[Edit]) -> Vec<(String, bool, String)> {
        // The baseline: cargo's target holds the unedited build.
        let _ = self.cargo_fresh();
        let mut rows = Vec::new();
        for edit in edits {
            let path = self.root.join(edit.path);
            let original = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            std::fs::write(&path, (edit.change)(&original)).expect("edit");
            let fresh = self.cargo_fresh();
            let status = self.status();
            let state = status["state"].as_str().unwrap_or("?").to_owned();
            let reasons = status["reasons"].to_string();
            println!(
                "matrix {} | {}: cargo {} | arca {state} {reasons}",
                self.bin,
                edit.label,
                if fresh { "fresh" } else { "rebuilds" }
            );
            assert_eq!(
                state == "fresh",
                fresh,
                "{}: cargo says fresh={fresh}, arca says {status}",
                edit.label
            );
            assert!(
                state == "fresh" || state == "stale",
                "{}: {status}",
                edit.label
            );
            rows.push((edit.label.to_owned(), fresh, reasons));
            std::fs::write(&path, &original).expect("revert");
            let _ = self.cargo_fresh();
            assert_eq!(
                self.status()["state"],
                "fresh",
                "{}: reverting restores fresh",
                edit.label
            );
        }
        rows
    }

    fn run_newest(&self) -> (String, i64) {
        let artifact = self
            .test
            .store()
            .newest_for_crate(&self.test.crate_dir)
            .expect("an artifact");
        self.test.run_image(&artifact.metadata.local_tag)
    }

    /// A one-line change of `file`, rebuilt; the new image prints `expected`.
    fn one_line_rebuild(&self, file: &str, from: &str, to: &str, expected: &str) {
        let path = self.root.join(file);
        let text_before = std::fs::read_to_string(&path).expect("read");
        assert!(text_before.contains(from), "{file} has `{from}`");
        std::fs::write(&path, text_before.replacen(from, to, 1)).expect("edit");
        assert_eq!(self.status()["state"], "stale");
        let output = self.build(&[]);
        assert!(output.status.success(), "{}", text(&output));
        let (printed, code) = self.run_newest();
        assert_eq!((printed.as_str(), code), (expected, 0));
        assert_eq!(self.status()["state"], "fresh");
    }
}

const COMMON_EDITS: [Edit; 2] = [
    Edit {
        label: "README.md appended",
        path: "README.md",
        change: append_line,
    },
    Edit {
        label: "blank line appended to Cargo.lock",
        path: "Cargo.lock",
        change: append_blank_line,
    },
];

fn built(real: &RealCrate, expected: &str) {
    let output = real.build(&[]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Downloaded") || stderr.contains("Compiling"),
        "{stderr}"
    );
    let (printed, code) = real.run_newest();
    assert_eq!((printed.as_str(), code), (expected, 0));
    assert_eq!(real.status()["state"], "fresh");
    // Nothing but the build wrote into the crate (no target/ in it).
    assert!(!real.test.crate_dir.join("target").exists());
}

#[test]
fn a_build_script_compiling_c_through_cc() {
    let Some(real) = RealCrate::new("c-build", "", "c-build") else {
        return;
    };
    built(&real, "c-build says 42");
    let mut edits: Vec<Edit> = COMMON_EDITS.into_iter().collect();
    edits.push(Edit {
        label: "tests/it.rs changed",
        path: "tests/it.rs",
        change: append_test,
    });
    edits.push(Edit {
        label: "C source changed (rerun-if-changed)",
        path: "src/answer.c",
        change: append_comment,
    });
    edits.push(Edit {
        label: "src/main.rs one-line change",
        path: "src/main.rs",
        change: append_comment,
    });
    real.matrix(&edits);
    real.one_line_rebuild("src/answer.c", "42", "43", "c-build says 43");
}

#[test]
fn a_build_script_running_make_from_the_packages_setting() {
    let Some(real) = RealCrate::new("make-build", "", "make-build") else {
        return;
    };
    built(&real, "hello from make (16 bytes)");
    let mut edits: Vec<Edit> = COMMON_EDITS.into_iter().collect();
    edits.push(Edit {
        label: "excluded benchdata/input.txt changed",
        path: "benchdata/input.txt",
        change: append_line,
    });
    edits.push(Edit {
        label: "tests/it.rs changed (whole-package rule)",
        path: "tests/it.rs",
        change: append_test,
    });
    let rows = real.matrix(&edits);
    let readme = &rows[0];
    assert!(!readme.1, "no rerun-if-changed: cargo reruns on README");
    assert!(
        readme
            .2
            .contains("README.md changed (build.rs declares no rerun-if-changed, so cargo rebuilds on any file of the package)"),
        "{}",
        readme.2
    );
    real.one_line_rebuild(
        "native/greeting.in",
        "hello from make",
        "hi from make",
        "hi from make (13 bytes)",
    );
}

#[test]
fn a_workspace_member_with_a_path_dependency() {
    let Some(real) = RealCrate::new("ws", "app", "ws-app") else {
        return;
    };
    built(&real, "ws-app: 7");
    let edits = [
        Edit {
            label: "app/README.md appended",
            path: "app/README.md",
            change: append_line,
        },
        Edit {
            label: "core/README.md appended",
            path: "core/README.md",
            change: append_line,
        },
        Edit {
            label: "blank line appended to Cargo.lock",
            path: "Cargo.lock",
            change: append_blank_line,
        },
        Edit {
            label: "app/tests/it.rs changed",
            path: "app/tests/it.rs",
            change: append_test,
        },
        Edit {
            label: "core/src/lib.rs one-line change",
            path: "core/src/lib.rs",
            change: append_comment,
        },
    ];
    real.matrix(&edits);
    real.one_line_rebuild("core/src/lib.rs", "7", "8", "ws-app: 8");
}

#[test]
fn a_crate_without_a_lock_file() {
    let Some(real) = RealCrate::new("no-lock", "", "no-lock") else {
        return;
    };
    // Status and check never write a lock file into the crate.
    let status = real.status();
    assert_eq!(status["state"], "unconfigured", "{status}");
    assert!(!real.root.join("Cargo.lock").exists());
    // The build creates it, as cargo build would.
    built(&real, "no-lock: 3");
    assert!(real.root.join("Cargo.lock").is_file());
    real.matrix(&COMMON_EDITS);
    real.one_line_rebuild("src/main.rs", "3u8", "4u8", "no-lock: 4");
}

#[test]
fn a_crate_with_two_binaries() {
    let Some(real) = RealCrate::new("two-bins", "", "second") else {
        return;
    };
    // Without --bin: the error lists the binaries and nothing is written.
    let output = real.test.build_cli(&[], None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("multiple binaries: first, second."),
        "{stderr}"
    );
    built(&real, "second: 2");
    let mut edits: Vec<Edit> = COMMON_EDITS.into_iter().collect();
    edits.push(Edit {
        label: "the other binary changed",
        path: "src/bin/first.rs",
        change: append_comment,
    });
    edits.push(Edit {
        label: "src/bin/second.rs one-line change",
        path: "src/bin/second.rs",
        change: append_comment,
    });
    real.matrix(&edits);
    real.one_line_rebuild("src/bin/second.rs", "2u8", "5u8", "second: 5");
    // Containers Arca starts run under the engine's init: the warm session
    // (`sleep`) is not PID 1 and stops at once.
    let sessions = real.test.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let inspect = Command::new("docker")
        .args(["inspect", "-f", "{{.HostConfig.Init}}", &sessions[0]])
        .output()
        .expect("docker inspect");
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "true");
    // A compile error removes the crate's warm session at once.
    std::fs::write(real.root.join("src/bin/second.rs"), "fn main() { nope }\n").expect("break");
    let output = real.build(&[]);
    assert!(!output.status.success());
    assert!(
        real.test.sessions().is_empty(),
        "no session after a failed build"
    );
    assert!(real.test.leftover_containers().is_empty());
}

#[test]
fn a_recipe_whose_download_fails_leaves_no_builder_tag_and_names_the_step() {
    let Some(real) = RealCrate::new("two-bins", "", "first") else {
        return;
    };
    // A toolchain the builder lacks: the recipe downloads rustup, through a
    // proxy that refuses connections (passed through from the host).
    let toolchain_file = real.root.join("rust-toolchain.toml");
    std::fs::write(&toolchain_file, "[toolchain]\nchannel = \"1.77\"\n").expect("pin");
    let output = real.test.build_cli_env(
        &["--bin", "first"],
        None,
        &[
            ("HTTPS_PROXY", "http://127.0.0.1:9"),
            ("https_proxy", "http://127.0.0.1:9"),
        ],
    );
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("failed at step: download rustup to install toolchain 1.77 (pinned by ")
            && stderr.contains(&toolchain_file.display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("no builder image was tagged"), "{stderr}");
    let tag = arca::plan::shaped_builder_image_tag(
        docker::BUILDER_BASE,
        &arca::plan::BuilderShape {
            packages: Vec::new(),
            toolchain: Some(arca::plan::PinnedToolchain {
                name: "1.77".into(),
                source: String::new(),
            }),
            cross: Vec::new(),
        },
    );
    let image = real
        .test
        .runtime
        .block_on(real.test.engine.inspect_image(&tag))
        .expect("inspect");
    assert!(image.is_none(), "{tag} must not exist");
    assert!(real.test.leftover_containers().is_empty());
    assert!(
        real.test
            .store()
            .newest_for_crate(&real.test.crate_dir)
            .is_none()
    );
}

#[test]
fn a_pinned_toolchain_the_builder_has_builds_and_the_config_key_wins_over_the_file() {
    let Some(real) = RealCrate::new("two-bins", "", "first") else {
        return;
    };
    // The fixture builder carries the host's toolchain.
    let host = Command::new("rustc")
        .arg("--version")
        .output()
        .expect("rustc");
    let version = String::from_utf8_lossy(&host.stdout);
    let minor: String = version
        .split_whitespace()
        .nth(1)
        .expect("version")
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    // The file pins a toolchain nobody can install here; the config's
    // `toolchain` (the builder's own) wins, as RUSTUP_TOOLCHAIN would.
    std::fs::write(
        real.root.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.77\"\n",
    )
    .expect("pin");
    std::fs::create_dir_all(real.root.join(".arca")).expect("config dir");
    std::fs::write(
        real.root.join(".arca/config.toml"),
        format!("[rust]\ntoolchain = \"{minor}\"\nenv = {{ ARCA_FIXTURE_NOTE = \"x\" }}\n"),
    )
    .expect("config");
    let output = real.build(&[]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(real.run_newest(), ("first: 1".to_owned(), 0));
    assert_eq!(real.status()["state"], "fresh");
    // Another toolchain makes the image stale.
    std::fs::write(
        real.root.join(".arca/config.toml"),
        "[rust]\ntoolchain = \"1.77\"\nenv = { ARCA_FIXTURE_NOTE = \"x\" }\n",
    )
    .expect("config");
    let status = real.status();
    assert_eq!(status["state"], "stale");
    assert_eq!(status["reasons"], serde_json::json!(["toolchain changed"]));
}
