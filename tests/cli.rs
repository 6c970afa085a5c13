//! The `arca` command line, driven as a user would: the real binary on
//! fixture crates in temporary directories, each run with its own ARCA_HOME.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

struct Fixture {
    _dir: TempDir,
    root: PathBuf,
    home: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        let home = root.join("arca-home");
        Self {
            _dir: dir,
            root,
            home,
        }
    }

    fn write(&self, relative: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
        path
    }

    /// A binary crate `demo` with features and a complete config.
    fn demo_crate(&self, config: &str) -> PathBuf {
        self.write(
            "demo/Cargo.toml",
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[features]\ncli = []\nhttp = []\n\n[workspace]\n",
        );
        self.write("demo/src/main.rs", "fn main() { println!(\"demo\"); }\n");
        self.write("demo/.arca/config.toml", config);
        self.root.join("demo")
    }

    fn arca(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_HOME", &self.home)
            .env_remove("RUST_LOG")
            .current_dir(&self.root)
            .output()
            .expect("run arca")
    }

    fn status_json(&self, path: &Path) -> Value {
        let output = self.arca(&["status", "--json", path.to_str().expect("utf-8 path")]);
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice(&output.stdout).expect("status prints JSON")
    }
}

const GOOD_CONFIG: &str =
    "[rust]\nprofile = \"release\"\nfeatures = [\"cli\"]\nbase_image = \"debian:bookworm-slim\"\n";

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn status_of_a_configured_crate_without_artifact_is_missing_with_a_fingerprint() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "missing", "{status}");
    assert_eq!(status["name"], "demo");
    assert_eq!(status["crate"], format!("file://{}", demo.display()));
    let fingerprint = status["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(fingerprint.len(), 64);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(status["artifact"].is_null());
}

#[test]
fn status_without_settings_is_unconfigured_and_names_them() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate("[rust]\nprofile = \"release\"\n");
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "unconfigured", "{status}");
    let message = status["message"].as_str().expect("message");
    assert!(
        message.contains("features") && message.contains("base_image"),
        "{message}"
    );
    assert!(status["fingerprint"].is_null());
}

#[test]
fn a_missing_cargo_toml_is_named() {
    let fixture = Fixture::new();
    fs::create_dir_all(fixture.root.join("empty")).expect("mkdir");
    let output = fixture.arca(&["status", "empty/Cargo.toml"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("No Cargo.toml found"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_broken_cargo_toml_is_an_error_status_with_cargos_reason() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    fixture.write(
        "demo/Cargo.toml",
        "[package]\nname = \"demo\"\nversion = \n",
    );
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "error", "{status}");
    assert!(status["fingerprint"].is_null());
    let message = status["message"].as_str().expect("message");
    assert!(message.contains("Cargo could not read"), "{message}");
}

#[test]
fn a_crate_without_binaries_says_so() {
    let fixture = Fixture::new();
    fixture.write(
        "lib/Cargo.toml",
        "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    );
    fixture.write("lib/src/lib.rs", "");
    let status = fixture.status_json(&fixture.root.join("lib"));
    assert_eq!(status["state"], "error");
    assert!(
        status["message"]
            .as_str()
            .expect("message")
            .contains("has no binary targets"),
        "{status}"
    );
}

#[test]
fn a_virtual_workspace_reports_its_member_crates() {
    let fixture = Fixture::new();
    fixture.write(
        "ws/Cargo.toml",
        "[workspace]\nmembers = [\"app\"]\nresolver = \"2\"\n",
    );
    fixture.write(
        "ws/app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    fixture.write("ws/app/src/main.rs", "fn main() {}\n");
    let statuses = fixture.status_json(&fixture.root.join("ws"));
    let statuses = statuses.as_array().expect("an array for a folder");
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0]["name"], "app");
    let output = fixture.arca(&["status", "ws/Cargo.toml"]);
    assert!(
        text(&output).contains("virtual workspace manifest"),
        "{}",
        text(&output)
    );
}

#[test]
fn check_prints_located_findings_and_fails_on_errors() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(
        "[rust]\nprofile = \"release\"\nfeatures = [\"cli\", \"htp\"]\nbase_image = \"Debian:12\"\nbni = \"demo\"\n",
    );
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let config = demo.join(".arca/config.toml");
    assert!(
        stdout.contains(&format!(
            "{}:3:20: error[unknown-feature]",
            config.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("error[invalid-image]"), "{stdout}");
    assert!(stdout.contains("warning[unknown-key]"), "{stdout}");
    assert!(stdout.contains("Did you mean `bin`?"), "{stdout}");
}

#[test]
fn check_reports_platform_problems_and_passes_with_only_warnings() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(&format!(
        "{GOOD_CONFIG}platforms = [\"linux/amd64\", \"linux/amr64\", \"linux/x86_64\"]\n"
    ));
    let config = demo.join(".arca/config.toml");
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "{}:5:29: error[invalid-value]: Arca cannot build for the platform `linux/amr64`.",
            config.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Did you mean `linux/arm64`?"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}:5:44: warning[invalid-value]: `linux/x86_64` is `linux/amd64`, already listed",
            config.display()
        )),
        "{stdout}"
    );
    // Warnings alone do not fail the check.
    fixture.write(
        "demo/.arca/config.toml",
        format!("{GOOD_CONFIG}platforms = []\n"),
    );
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("warning[empty-value]: `platforms = []` names no platform"),
        "{}",
        text(&output)
    );
}

#[test]
fn check_passes_a_good_config() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(output.stdout.is_empty(), "{}", text(&output));
}

#[test]
fn check_reports_invalid_toml_wrong_types_and_bad_bins() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate("[rust\nprofile = \"release\"\n");
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains(":1:"), "{}", text(&output));
    assert!(
        text(&output).contains("error[toml-syntax]"),
        "{}",
        text(&output)
    );

    fixture.write(
        "demo/.arca/config.toml",
        "[rust]\nprofile = \"release\"\nfeatures = \"cli\"\nbin = \"../../etc/passwd\"\nbase_image = \"debian:12\"\n",
    );
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1));
    let all = text(&output);
    assert!(all.contains("error[invalid-type]"), "{all}");
    assert!(all.contains("error[unknown-binary]"), "{all}");
}

#[test]
fn invalid_utf8_config_is_refused_with_its_position() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate("");
    fixture.write("demo/.arca/config.toml", b"[rust]\nprofile = \"r\xffx\"\n");
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("not valid UTF-8"),
        "{}",
        text(&output)
    );
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "error");
    assert!(
        status["message"]
            .as_str()
            .expect("message")
            .contains("UTF-8")
    );
}

#[test]
fn a_ten_megabyte_config_is_checked_quickly() {
    let fixture = Fixture::new();
    let mut config = String::from(GOOD_CONFIG);
    config.push_str("# padding\n");
    while config.len() < 10 * 1024 * 1024 {
        config.push_str("# a comment line that pads the file to ten megabytes.........\n");
    }
    config.push_str("[extra]\nkey = 1\n");
    let demo = fixture.demo_crate(&config);
    let started = std::time::Instant::now();
    let output = fixture.arca(&["check", demo.to_str().expect("path")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("warning[unknown-key]"));
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn symlink_loops_are_harmless_and_unreadable_files_are_named() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    std::os::unix::fs::symlink("loop", demo.join("src/loop")).expect("symlink");
    std::os::unix::fs::symlink(".", demo.join("src/self")).expect("symlink");
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "missing", "{status}");

    let secret = fixture.write("demo/src/secret.rs", "// unreadable\n");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    if fs::read(&secret).is_ok() {
        // Running as root: permissions do not stop reads; nothing to test.
        return;
    }
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "error", "{status}");
    assert!(
        status["message"]
            .as_str()
            .expect("message")
            .contains("secret.rs"),
        "{status}"
    );
}

#[test]
fn a_corrupt_store_record_is_skipped_with_a_warning() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    fixture.write(
        "arca-home/containers/brokenid/metadata.toml",
        "schema_version = [",
    );
    fixture.write("arca-home/containers/foreign0/metadata.toml", "hello = 1\n");
    let output = fixture.arca(&["list"]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("brokenid") && stderr.contains("foreign0"),
        "{stderr}"
    );
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "missing");
}

#[test]
fn an_artifact_with_the_live_fingerprint_is_fresh_and_an_edit_makes_it_stale() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    let fingerprint = fixture.status_json(&demo)["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    let record = format!(
        "schema_version = 3\nartifact_id = \"ab12cd34\"\nremote_tag = \"demo-ab12cd34\"\nbuild_fingerprint = \"{fingerprint}\"\nkind = \"rust\"\ncreated_at_epoch_ms = 1732400000000\ncrate_name = \"demo\"\ncrate_version = \"0.1.0\"\nbinary_name = \"demo\"\nsource_path = \"{dir}\"\nmanifest_path = \"{dir}/Cargo.toml\"\ncargo_profile = \"release\"\ncargo_features = [\"cli\"]\nbase_image = \"debian:bookworm-slim\"\nruntime = \"docker\"\nlocal_tag = \"arca-local:demo-ab12cd34\"\narchive_file = \"image.tar\"\n",
        dir = demo.display()
    );
    fixture.write("arca-home/containers/ab12cd34/metadata.toml", record);
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "fresh", "{status}");
    assert_eq!(status["artifact"]["id"], "ab12cd34");
    assert_eq!(status["artifact"]["createdAt"], 1732400000000u64);

    fixture.write("demo/src/main.rs", "fn main() { println!(\"changed\"); }\n");
    assert_eq!(fixture.status_json(&demo)["state"], "stale");
    fixture.write("demo/src/main.rs", "fn main() { println!(\"demo\"); }\n");
    assert_eq!(fixture.status_json(&demo)["state"], "fresh");

    fixture.write(
        "demo/.arca/config.toml",
        GOOD_CONFIG.replace("[\"cli\"]", "[\"cli\", \"http\"]"),
    );
    let status = fixture.status_json(&demo);
    assert_eq!(status["state"], "stale");
    assert_eq!(status["reasons"], serde_json::json!(["features changed"]));

    // The artifact the status points at stays unless asked.
    let output = fixture.arca(&["prune", "local", "--hours", "1"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        !text(&output).contains("Removed ab12cd34"),
        "{}",
        text(&output)
    );
    assert!(
        text(&output).contains("Pruned 0 artifact(s), freed 0 B."),
        "{}",
        text(&output)
    );
    let output = fixture.arca(&["prune", "local", "--hours", "1", "--include-current"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("Removed ab12cd34"),
        "{}",
        text(&output)
    );
    assert_eq!(fixture.status_json(&demo)["state"], "missing");
}

#[test]
fn prune_keep_leaves_the_newest_per_crate_and_reports_bytes_freed() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    for (id, created) in [
        ("old00001", 1_000u64),
        ("mid00002", 2_000),
        ("new00003", 3_000),
    ] {
        let record = format!(
            "schema_version = 3\nartifact_id = \"{id}\"\nremote_tag = \"demo-{id}\"\nbuild_fingerprint = \"f\"\nkind = \"rust\"\ncreated_at_epoch_ms = {created}\ncrate_name = \"demo\"\ncrate_version = \"0.1.0\"\nbinary_name = \"demo\"\nsource_path = \"{dir}\"\nmanifest_path = \"{dir}/Cargo.toml\"\ncargo_profile = \"release\"\ncargo_features = []\nbase_image = \"debian:bookworm-slim\"\nruntime = \"docker\"\nlocal_tag = \"arca-local:demo-{id}\"\narchive_file = \"image.tar\"\n",
            dir = demo.display()
        );
        fixture.write(&format!("arca-home/containers/{id}/metadata.toml"), record);
        fixture.write(
            &format!("arca-home/containers/{id}/image.tar"),
            "x".repeat(1500),
        );
    }
    let output = fixture.arca(&["prune", "local", "--keep", "2"]);
    assert!(output.status.success(), "{}", text(&output));
    let printed = text(&output);
    assert!(printed.contains("Removed old00001"), "{printed}");
    assert!(
        !printed.contains("mid00002") && !printed.contains("Removed new00003"),
        "{printed}"
    );
    assert!(
        printed.contains("Pruned 1 artifact(s), freed ") && printed.contains(" KB."),
        "{printed}"
    );
    assert!(!fixture.home.join("containers/old00001").exists());
    assert!(fixture.home.join("containers/new00003").exists());
    // `--keep 0` still keeps the current artifact.
    let output = fixture.arca(&["prune", "local", "--keep", "0"]);
    assert!(
        text(&output).contains("Removed mid00002"),
        "{}",
        text(&output)
    );
    assert_eq!(fixture.status_json(&demo)["artifact"]["id"], "new00003");
}

#[test]
fn build_with_an_unreachable_engine_names_it_and_records_nothing() {
    let fixture = Fixture::new();
    let demo = fixture.demo_crate(GOOD_CONFIG);
    let output = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["build", "rust", demo.to_str().expect("path")])
        .env("ARCA_HOME", &fixture.home)
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .expect("run arca");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Cannot reach the Docker engine at tcp://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
    let records = fs::read_dir(fixture.home.join("containers"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(records, 0);
}

#[test]
fn prune_cache_removes_only_caches_unused_for_the_given_time() {
    let fixture = Fixture::new();
    let old = fixture.write(
        "arca-home/cache/rust/builds/oldkey/target/release/app",
        "x".repeat(2000),
    );
    let old_marker = fixture.write("arca-home/cache/rust/builds/oldkey/last-used", "");
    let recent = fixture.write("arca-home/cache/rust/builds/newkey/last-used", "");
    fixture.write("arca-home/cache/rust/cargo-home/last-used", "");
    let touched = Command::new("touch")
        .args(["-d", "3 days ago"])
        .arg(&old_marker)
        .status()
        .expect("touch");
    assert!(touched.success());
    let output = fixture.arca(&["prune", "cache", "--days", "2"]);
    assert!(output.status.success(), "{}", text(&output));
    let printed = text(&output);
    assert!(printed.contains("oldkey (2.0 KB)"), "{printed}");
    assert!(
        printed.contains(
            "Pruned 1 cache directory and 0 builder image(s); the directories freed 2.0 KB."
        ),
        "{printed}"
    );
    assert!(!old.exists());
    assert!(recent.exists(), "a cache used since stays");
    assert!(fixture.home.join("cache/rust/cargo-home").exists());
    let output = fixture.arca(&["prune", "cache"]);
    assert!(!output.status.success(), "an age is required");
}
