//! `arca push` against real registries: Debian's `docker-registry` (the CNCF
//! distribution registry) started on a free loopback port, once over plain
//! HTTP, once with TLS (a throwaway CA) and htpasswd basic auth, and once in
//! token mode with a token service of the test's own (bearer tokens, as
//! Docker Hub, GHCR, Harbor and GitLab hand out). What was
//! pushed is checked with skopeo, an independent client; what was sent is
//! counted on the registry's side (its request log and storage directory).
//!
//! Without `docker-registry`/`skopeo` (see .ci/registry-setup.sh) each test
//! prints a note and passes, unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use arca::registry::fixture::{self, Form};
use arca::store::{Store, StoredArtifact};
use rand::RngCore;
use serde_json::Value;

use registry::{Registry, TokenReply, TokenService, make_tls, tools_present};

/// An isolated user: ARCA_HOME, HOME (no docker config, no certs) and an
/// empty auth setup.
struct User {
    home: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        let user = Self {
            home: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(user.home.path().join("run")).unwrap();
        user
    }

    fn store(&self) -> Store {
        Store::at(self.home.path().join("arca").join("containers"))
    }

    fn crate_dir(&self) -> PathBuf {
        let dir = self.home.path().join("demo");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_arca"));
        command
            .env("ARCA_HOME", self.home.path().join("arca"))
            .env("HOME", self.home.path())
            .env("XDG_RUNTIME_DIR", self.home.path().join("run"))
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("ARCA_INSECURE_REGISTRIES")
            .current_dir(self.home.path());
        command
    }

    fn push(&self, selector: &str, to: &str) -> Output {
        self.command()
            .args(["push", selector, "--to", to, "--json"])
            .output()
            .unwrap()
    }

    /// Trusts `ca` for `registry` the way Docker and podman users do
    /// (`certs.d/<host:port>/ca.crt`).
    fn trust(&self, registry: &str, ca: &Path) {
        let dir = self
            .home
            .path()
            .join(".config/containers/certs.d")
            .join(registry);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(ca, dir.join("ca.crt")).unwrap();
    }
}

fn succeeded(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "arca push failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "arca push should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let message = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("arca push said: {message}");
    message
}

fn random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn skopeo_inspect(reference: &str, extra: &[&str]) -> Value {
    let output = Command::new("skopeo")
        .arg("inspect")
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn reread(artifact: &StoredArtifact, store: &Store) -> StoredArtifact {
    store
        .select(&artifact.metadata.artifact_id)
        .unwrap()
        .remove(0)
}

fn main_source(version: &str) -> Vec<u8> {
    // A "binary" whose one line changed between versions.
    let mut binary = b"fn main() {\n".repeat(20_000);
    binary.extend_from_slice(format!("    println!(\"{version}\");\n}}\n").as_bytes());
    binary
}

#[test]
fn plain_http_push_skips_what_the_registry_has_and_mounts_across_repositories() {
    if !tools_present() {
        return;
    }
    let registry = Registry::start(None, None);
    let user = User::new();
    let store = user.store();
    let base = fixture::layer_tar(&[("usr/lib/base.bin", &random(3 << 20))]);
    let v1 = fixture::layer_tar(&[("app", &main_source("one"))]);
    let first = fixture::write_artifact(
        &store,
        "aaaa0001",
        &user.crate_dir(),
        &[base.clone(), v1],
        Form::Layout,
    )
    .unwrap();
    let destination = format!("{}/team/demo", registry.address);

    let pushed = succeeded(&user.push("aaaa0001", &destination));
    let tag = format!("{destination}:demo-aaaa0001");
    assert_eq!(pushed["tag"], tag.as_str());
    let reference = pushed["ref"].as_str().unwrap().to_owned();
    assert!(
        reference.starts_with(&format!("{destination}@sha256:")),
        "{reference}"
    );
    // skopeo sees the image under the tag, with our manifest digest and layers.
    let inspected = skopeo_inspect(&tag, &["--tls-verify=false"]);
    assert_eq!(
        Some(inspected["Digest"].as_str().unwrap()),
        reference.split('@').nth(1)
    );
    let image = arca::registry::source::read(&first).unwrap();
    let layers: Vec<&str> = inspected["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        image
            .layers
            .iter()
            .map(|l| l.digest.as_str())
            .collect::<Vec<_>>()
    );
    // ...and can copy it out, byte for byte.
    let copy = tempfile::tempdir().unwrap();
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{tag}"),
            &format!("dir:{}", copy.path().display()),
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let app_hex = image.layers[1].digest.trim_start_matches("sha256:");
    assert_eq!(
        std::fs::read(copy.path().join(app_hex)).unwrap(),
        std::fs::read(&image.layers[1].data.path).unwrap()
    );
    // The record says where it went, readable as the original CLI's schema.
    let record = reread(&first, &store);
    assert_eq!(
        record.metadata.uploaded_ref.as_deref(),
        Some(reference.as_str())
    );
    assert!(record.metadata.uploaded_at_epoch_ms.is_some());
    let stored_blobs = registry.blob_sizes();

    // Re-push: no upload request at all, nothing new stored.
    let uploads = registry.upload_requests();
    assert!(
        uploads >= 3,
        "the first push uploaded layers and config ({uploads} requests)"
    );
    let started = Instant::now();
    let again = succeeded(&user.push("aaaa0001", &destination));
    let elapsed = started.elapsed();
    assert_eq!(again["bytesSent"], 0);
    assert_eq!(again["existing"], 3);
    assert_eq!(again["ref"], reference.as_str());
    assert_eq!(
        registry.upload_requests(),
        uploads,
        "a re-push must not start any upload"
    );
    assert_eq!(registry.blob_sizes(), stored_blobs);
    eprintln!("re-push took {elapsed:?}");

    // A one-line change: only the new layer and the config are sent.
    let v2 = fixture::layer_tar(&[("app", &main_source("two"))]);
    let second = fixture::write_artifact(
        &store,
        "aaaa0002",
        &user.crate_dir(),
        &[base, v2.clone()],
        Form::Layout,
    )
    .unwrap();
    let changed = succeeded(&user.push("aaaa0002", &destination));
    assert_eq!(changed["uploaded"], 2, "{changed}");
    assert_eq!(changed["existing"], 1, "{changed}");
    let after = registry.blob_sizes();
    let new_bytes: u64 = after
        .iter()
        .filter(|(hex, _)| !stored_blobs.contains_key(*hex))
        .map(|(_, size)| size)
        .sum();
    let app_layer = v2.len() as u64;
    assert!(
        new_bytes <= app_layer + 64 * 1024,
        "stored {new_bytes} new bytes for a {app_layer}-byte layer"
    );
    assert!(new_bytes >= app_layer);
    assert!(changed["bytesSent"].as_u64().unwrap() <= app_layer + 64 * 1024);
    let second_record = reread(&second, &store);
    assert_eq!(
        second_record.metadata.uploaded_ref.as_deref(),
        changed["ref"].as_str()
    );

    // Another repository of the same registry: the layers are mounted from
    // where Arca pushed them before, only the config is uploaded.
    let other = format!("{}/elsewhere/demo", registry.address);
    let before = registry.upload_requests();
    let mounted = succeeded(&user.push("aaaa0002", &other));
    assert_eq!(mounted["mounted"], 2, "{mounted}");
    assert_eq!(mounted["uploaded"], 1, "{mounted}");
    assert!(
        registry.upload_requests() - before <= 2,
        "only the config is uploaded"
    );
    skopeo_inspect(&format!("{other}:demo-aaaa0002"), &["--tls-verify=false"]);
}

#[test]
fn artifacts_of_the_original_cli_push_from_their_image_archive() {
    if !tools_present() {
        return;
    }
    let registry = Registry::start(None, None);
    let user = User::new();
    let store = user.store();
    let layers = vec![
        fixture::layer_tar(&[("etc/base", &random(256 << 10))]),
        fixture::layer_tar(&[("app", &main_source("archive"))]),
    ];
    let artifact = fixture::write_artifact(
        &store,
        "orig0001",
        &user.crate_dir(),
        &layers,
        Form::Archive,
    )
    .unwrap();
    assert!(!artifact.dir.join("image").exists());
    // The destination comes from the crate's config; the tag from the record.
    std::fs::create_dir_all(user.crate_dir().join(".arca")).unwrap();
    std::fs::write(
        user.crate_dir().join(".arca/config.toml"),
        format!("[rust]\npush_to = \"{}/legacy/demo\"\n", registry.address),
    )
    .unwrap();
    let output = user
        .command()
        .args(["push", "orig", "--json"])
        .output()
        .unwrap();
    let pushed = succeeded(&output);
    let tag = format!("{}/legacy/demo:demo-orig0001", registry.address);
    assert_eq!(pushed["tag"], tag.as_str());
    let inspected = skopeo_inspect(&tag, &["--tls-verify=false"]);
    let expected: Vec<String> = layers
        .iter()
        .map(|layer| format!("sha256:{}", sha256_hex(layer)))
        .collect();
    assert_eq!(inspected["Layers"], serde_json::json!(expected));
    assert_eq!(
        reread(&artifact, &store).metadata.uploaded_ref.as_deref(),
        pushed["ref"].as_str()
    );
    // The crate directory as selector picks the same (newest) artifact.
    let by_dir = user
        .command()
        .args(["push", "--json"])
        .current_dir(user.crate_dir())
        .output()
        .unwrap();
    assert_eq!(succeeded(&by_dir)["bytesSent"], 0);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn tls_registry_with_basic_auth_uses_the_users_login_and_refuses_wrong_ones() {
    if !tools_present() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let tls = make_tls(certs.path());
    let registry = Registry::start(Some(&tls), Some(("alice", "correct horse")));
    let user = User::new();
    let store = user.store();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("tls"))])];
    let artifact =
        fixture::write_artifact(&store, "tls00001", &user.crate_dir(), &layers, Form::Layout)
            .unwrap();
    let destination = format!("{}/secure/demo", registry.address);

    // The CA is not trusted yet: a TLS error that says what to do.
    let untrusted = failed(&user.push("tls00001", &destination));
    assert!(
        untrusted.contains("TLS") && untrusted.contains("certs.d"),
        "{untrusted}"
    );

    user.trust(&registry.address, &tls.ca);
    // No login anywhere.
    let anonymous = failed(&user.push("tls00001", &destination));
    assert!(
        anonymous.contains("needs a login") && anonymous.contains("docker login"),
        "{anonymous}"
    );

    // A wrong password in ~/.docker/config.json.
    let docker_dir = user.home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    use base64::Engine;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    std::fs::write(
        docker_dir.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.address,
            encode("alice:wrong")
        ),
    )
    .unwrap();
    let wrong = failed(&user.push("tls00001", &destination));
    assert!(
        wrong.contains("refused the login of `alice`") && wrong.contains("config.json"),
        "{wrong}"
    );
    assert!(
        !wrong.contains("wrong"),
        "the password must not be shown: {wrong}"
    );
    assert!(reread(&artifact, &store).metadata.uploaded_ref.is_none());

    // The right one in podman's auth file (REGISTRY_AUTH_FILE wins).
    let auth_file = user.home.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.address,
            encode("alice:correct horse")
        ),
    )
    .unwrap();
    let output = user
        .command()
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .args(["push", "tls00001", "--to", &destination, "--json"])
        .output()
        .unwrap();
    let pushed = succeeded(&output);
    // Even at the most verbose log level, the secret never reaches a log.
    let verbose = user
        .command()
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .env("RUST_LOG", "trace")
        .args(["push", "tls00001", "--to", &destination, "--json"])
        .output()
        .unwrap();
    succeeded(&verbose);
    let logs = String::from_utf8_lossy(&verbose.stderr);
    assert!(logs.len() > 1000, "trace logs were written");
    for secret in ["correct horse", &encode("alice:correct horse")] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
    // A user who trusts the CA through SSL_CERT_FILE (the host bundle's
    // override) instead of certs.d pushes too.
    let other = User::new();
    fixture::write_artifact(
        &other.store(),
        "tls00002",
        &other.crate_dir(),
        &layers,
        Form::Layout,
    )
    .unwrap();
    let via_bundle = other
        .command()
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .env("SSL_CERT_FILE", &tls.ca)
        .args(["push", "tls00002", "--to", &destination, "--json"])
        .output()
        .unwrap();
    // Same layers, same config: the registry has everything already.
    assert_eq!(succeeded(&via_bundle)["existing"], 2);
    let record = std::fs::read_to_string(artifact.dir.join("metadata.toml")).unwrap();
    assert!(
        !record.contains("correct horse") && !record.contains("alice"),
        "{record}"
    );
    // skopeo verifies the registry against the same throwaway CA.
    let skopeo_certs = tempfile::tempdir().unwrap();
    std::fs::copy(&tls.ca, skopeo_certs.path().join("ca.crt")).unwrap();
    let inspected = skopeo_inspect(
        &format!("{destination}:demo-tls00001"),
        &[
            "--creds",
            "alice:correct horse",
            "--cert-dir",
            skopeo_certs.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        Some(inspected["Digest"].as_str().unwrap()),
        pushed["ref"].as_str().unwrap().split('@').nth(1)
    );
}

#[test]
fn bad_destinations_unknown_registries_and_pruned_blobs_are_clear_errors() {
    if !tools_present() {
        return;
    }
    let registry = Registry::start(None, None);
    let user = User::new();
    let store = user.store();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("errors"))])];
    let artifact =
        fixture::write_artifact(&store, "err00001", &user.crate_dir(), &layers, Form::Layout)
            .unwrap();

    let bad_tag = failed(&user.push("err00001", &format!("{}/demo:-bad", registry.address)));
    assert!(
        bad_tag.contains("not a valid push destination") && bad_tag.contains("tag"),
        "{bad_tag}"
    );
    let upper = failed(&user.push("err00001", &format!("{}/Demo", registry.address)));
    assert!(upper.contains("not a valid push destination"), "{upper}");

    let unknown = failed(&user.push("err00001", "registry.invalid/team/demo"));
    assert!(
        unknown.contains("Cannot reach the registry registry.invalid"),
        "{unknown}"
    );

    let none = user.command().args(["push", "err00001"]).output().unwrap();
    let none = failed(&none);
    assert!(
        none.contains("No destination") && none.contains("push_to"),
        "{none}"
    );

    std::fs::create_dir_all(user.crate_dir().join(".arca")).unwrap();
    std::fs::write(
        user.crate_dir().join(".arca/config.toml"),
        "[rust]\npush_to = \"localhost:5000/demo@sha256:12\"\n",
    )
    .unwrap();
    let bad_config = failed(&user.command().args(["push", "err00001"]).output().unwrap());
    assert!(
        bad_config.contains("config.toml:2:11") && bad_config.contains("push destination"),
        "{bad_config}"
    );

    std::fs::remove_file(user.crate_dir().join(".arca/config.toml")).unwrap();

    let unknown_artifact = failed(&user.push("zzzz", &format!("{}/demo", registry.address)));
    assert!(
        unknown_artifact.contains("No artifact matches `zzzz`"),
        "{unknown_artifact}"
    );

    // The layer store lost a blob of this artifact.
    let image = arca::registry::source::read(&artifact).unwrap();
    std::fs::remove_file(&image.layers[0].data.path).unwrap();
    let pruned = failed(&user.push("err00001", &format!("{}/demo", registry.address)));
    assert!(
        pruned.contains(&image.layers[0].digest) && pruned.contains("missing"),
        "{pruned}"
    );
    assert!(reread(&artifact, &store).metadata.uploaded_ref.is_none());
    assert_eq!(registry.upload_requests(), 0);
}

#[test]
fn a_registry_that_dies_mid_push_leaves_nothing_recorded() {
    if !tools_present() {
        return;
    }
    let mut registry = Registry::start(None, None);
    let user = User::new();
    let store = user.store();
    let layers = vec![fixture::layer_tar(&[("big.bin", &random(160 << 20))])];
    let artifact =
        fixture::write_artifact(&store, "kill0001", &user.crate_dir(), &layers, Form::Layout)
            .unwrap();
    let child = user
        .command()
        .args([
            "push",
            "kill0001",
            "--to",
            &format!("{}/demo", registry.address),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the registry as soon as the upload has started storing bytes.
    let uploads = registry
        .storage
        .join("docker/registry/v2/repositories/demo/_uploads");
    let deadline = Instant::now() + Duration::from_secs(60);
    'wait: loop {
        assert!(Instant::now() < deadline, "the upload never started");
        for entry in std::fs::read_dir(&uploads).into_iter().flatten().flatten() {
            if std::fs::metadata(entry.path().join("data")).is_ok_and(|m| m.len() > 0) {
                break 'wait;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    registry.kill();
    let output = child.wait_with_output().unwrap();
    let error = failed(&output);
    assert!(
        error.contains("broke while sending") || error.contains("Cannot reach"),
        "{error}"
    );
    assert!(error.contains("Nothing was recorded as pushed"), "{error}");
    let record = reread(&artifact, &store);
    assert!(record.metadata.uploaded_ref.is_none());
    assert!(record.metadata.uploaded_at_epoch_ms.is_none());
}

/// This machine's first non-loopback IPv4 address, if it has one.
fn non_loopback_ipv4() -> Option<String> {
    // Connecting a UDP socket sends nothing; it only picks the source
    // address of the route.
    ["192.0.2.1:9", "10.0.0.1:9", "172.16.0.1:9", "8.8.8.8:53"]
        .iter()
        .find_map(|target| {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
            socket.connect(target).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
        })
}

#[test]
fn plain_http_beyond_loopback_needs_the_registry_marked_insecure() {
    if !tools_present() {
        return;
    }
    let Some(ip) = non_loopback_ipv4() else {
        eprintln!("note: no non-loopback IPv4 address on this machine; skipping");
        return;
    };
    let registry = Registry::start_on(&ip, None, None);
    let user = User::new();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("insecure"))])];
    fixture::write_artifact(
        &user.store(),
        "insec001",
        &user.crate_dir(),
        &layers,
        Form::Layout,
    )
    .unwrap();
    let destination = format!("{}/demo", registry.address);
    let refused = failed(&user.push("insec001", &destination));
    assert!(
        refused.contains("TLS") && refused.contains("--insecure"),
        "{refused}"
    );
    assert_eq!(registry.upload_requests(), 0);

    let marked = user
        .command()
        .env(
            "ARCA_INSECURE_REGISTRIES",
            format!("other.example, {}", registry.address),
        )
        .args(["push", "insec001", "--to", &destination, "--json"])
        .output()
        .unwrap();
    assert_eq!(succeeded(&marked)["uploaded"], 2);
    let flagged = user
        .command()
        .args([
            "push",
            "insec001",
            "--to",
            &destination,
            "--insecure",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(succeeded(&flagged)["bytesSent"], 0);
}

/// A raw `GET` to the registry without credentials: status line and headers.
fn anonymous_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn token_registry_pushes_with_a_bearer_token_from_the_token_service() {
    if !tools_present() {
        return;
    }
    use base64::Engine;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let password = "tr0ub4dor &3";
    let tokens = TokenService::start("alice", password);
    let registry = Registry::start_token(&tokens);
    let destination = format!("{}/tok/demo", registry.address);

    // Auth is on: an anonymous request is sent to the token service.
    let anonymous = anonymous_get(&registry.address, "/v2/tok/demo/tags/list");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(
        anonymous.contains(&format!(
            "Bearer realm=\"{}\",service=\"arca-test\"",
            tokens.realm
        )),
        "{anonymous}"
    );

    let user = User::new();
    let store = user.store();
    let base = fixture::layer_tar(&[("usr/lib/base.bin", &random(1 << 20))]);
    let layers = vec![
        base.clone(),
        fixture::layer_tar(&[("app", &main_source("token"))]),
    ];
    let artifact =
        fixture::write_artifact(&store, "tok00001", &user.crate_dir(), &layers, Form::Layout)
            .unwrap();
    let docker_dir = user.home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let docker_config = |login: &str| {
        std::fs::write(
            docker_dir.join("config.json"),
            format!(
                r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
                registry.address,
                encode(login)
            ),
        )
        .unwrap();
    };

    // A wrong password: the token service says no, the push stops before
    // any upload, and the message names the registry and what to do.
    docker_config("alice:wrong-password");
    let wrong = failed(&user.push("tok00001", &destination));
    assert!(
        wrong.contains(&registry.address)
            && wrong.contains("refused the login of `alice`")
            && wrong.contains("config.json")
            && wrong.contains("docker login"),
        "{wrong}"
    );
    assert!(!wrong.contains("wrong-password"), "{wrong}");
    assert!(reread(&artifact, &store).metadata.uploaded_ref.is_none());
    assert_eq!(registry.upload_requests(), 0);
    assert!(registry.blob_sizes().is_empty());
    let refused = tokens.requests();
    assert!(!refused.is_empty() && refused.iter().all(|r| !r.granted));

    // The right password, from ~/.docker/config.json `auths`.
    docker_config(&format!("alice:{password}"));
    let output = user
        .command()
        .env("RUST_LOG", "trace")
        .args(["push", "tok00001", "--to", &destination, "--json"])
        .output()
        .unwrap();
    let pushed = succeeded(&output);
    let reference = pushed["ref"].as_str().unwrap().to_owned();
    assert_eq!(
        reread(&artifact, &store).metadata.uploaded_ref.as_deref(),
        Some(reference.as_str())
    );
    // The token service was asked, with the registry's service name and
    // the repository's push scope, by alice.
    let granted: Vec<_> = tokens
        .requests()
        .into_iter()
        .filter(|r| r.granted)
        .collect();
    assert!(!granted.is_empty(), "no token was issued");
    for request in &granted {
        assert_eq!(request.param("service"), ["arca-test"], "{request:?}");
        assert_eq!(request.user.as_deref(), Some("alice"));
        for scope in request.param("scope") {
            assert!(scope.starts_with("repository:tok/demo:"), "{request:?}");
        }
    }
    assert!(
        granted
            .iter()
            .any(|r| r.param("scope").iter().any(|s| s.contains("push"))),
        "no push scope was asked for: {granted:?}"
    );
    // Every upload went through with a token (the registry accepted them).
    assert!(registry.upload_requests() >= 2, "{:?}", registry.requests());

    // Arca's own bounded manifest read (a base fetch) goes through the same
    // token service: the pushed manifest comes back by digest, byte for byte.
    let (_, pushed_digest) = reference.rsplit_once('@').expect("pushed by digest");
    let pulled = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use arca::registry::credentials::{Credential, Login, Secret};
        let pull_from = arca::registry::destination::Destination::parse(&destination, "latest")
            .expect("destination");
        let credential = Credential {
            login: Login::Password {
                username: "alice".to_owned(),
                password: Secret::new(password),
            },
            source: "the test".to_owned(),
        };
        let client = arca::registry::client::RegistryClient::connect_pull(
            &pull_from,
            Some(&credential),
            false,
        )
        .await
        .unwrap_or_else(|error| panic!("connect: {error}"));
        client
            .manifest(pushed_digest)
            .await
            .unwrap_or_else(|error| panic!("manifest: {error}"))
    });
    assert_eq!(
        pushed_digest,
        format!("sha256:{}", sha256_hex(&pulled)),
        "the manifest read back is the pushed one"
    );

    // Neither the password nor a token reaches the trace log, the record
    // or the pushed image.
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.len() > 1000, "trace logs were written");
    let mut secrets = vec![password.to_owned(), encode(&format!("alice:{password}"))];
    secrets.extend(tokens.tokens());
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs"
        );
    }
    let record = std::fs::read_to_string(artifact.dir.join("metadata.toml")).unwrap();
    for secret in &secrets {
        assert!(
            !record.contains(secret.as_str()),
            "a secret leaked into the record"
        );
    }
    for digest in registry.blob_sizes().keys() {
        let bytes = std::fs::read(registry.blob_data(digest)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret is in blob {digest}"
            );
        }
    }

    // skopeo, given the same login, sees our manifest under the tag.
    let inspected = skopeo_inspect(
        &format!("{destination}:demo-tok00001"),
        &[
            "--tls-verify=false",
            "--creds",
            &format!("alice:{password}"),
        ],
    );
    assert_eq!(
        Some(inspected["Digest"].as_str().unwrap()),
        reference.split('@').nth(1)
    );
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);

    // A re-push sends no layer: the HEADs (with a token) find everything.
    let uploads = registry.upload_requests();
    let asked = tokens.requests().len();
    let started = Instant::now();
    let again = succeeded(&user.push("tok00001", &destination));
    eprintln!(
        "re-push: {:?}, {} token requests",
        started.elapsed(),
        tokens.requests().len() - asked
    );
    assert_eq!(again["existing"], 3, "{again}");
    assert_eq!(again["bytesSent"], 0, "{again}");
    assert_eq!(registry.upload_requests(), uploads);

    // Another repository with the same base layer: the mount needs a token
    // that may also read the source repository (the registry checks both),
    // so one is asked for with both scopes, and the base is not sent again.
    let other = format!("{}/tok/other", registry.address);
    let second_layers = vec![base, fixture::layer_tar(&[("app", &main_source("other"))])];
    fixture::write_artifact(
        &store,
        "tok00002",
        &user.crate_dir(),
        &second_layers,
        Form::Layout,
    )
    .unwrap();
    let second = succeeded(&user.push("tok00002", &other));
    eprintln!("push to a second repository: {second}");
    assert_eq!(second["mounted"], 1, "{second}");
    assert!(
        second["bytesSent"].as_u64().unwrap() < 1 << 20,
        "the 1 MiB base was sent again: {second}"
    );
    assert!(
        tokens.requests().iter().any(|r| r.granted
            && r.param("scope") == ["repository:tok/other:pull,push", "repository:tok/demo:pull"]),
        "no token was asked for both repositories: {:?}",
        tokens.requests()
    );
    let inspected = skopeo_inspect(
        &format!("{other}:demo-tok00002"),
        &[
            "--tls-verify=false",
            "--creds",
            &format!("alice:{password}"),
        ],
    );
    assert_eq!(
        Some(inspected["Digest"].as_str().unwrap()),
        second["ref"].as_str().unwrap().split('@').nth(1)
    );
}

#[test]
fn a_token_without_push_rights_is_a_clear_error() {
    if !tools_present() {
        return;
    }
    use base64::Engine;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let tokens = TokenService::start_allowing("reader", "read-only-pat", &["pull"]);
    let registry = Registry::start_token(&tokens);
    let user = User::new();
    let store = user.store();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("read-only"))])];
    let artifact =
        fixture::write_artifact(&store, "tok00003", &user.crate_dir(), &layers, Form::Layout)
            .unwrap();
    let docker_dir = user.home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::write(
        docker_dir.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.address,
            encode("reader:read-only-pat")
        ),
    )
    .unwrap();
    let destination = format!("{}/tok/readonly", registry.address);
    let refused = failed(&user.push("tok00003", &destination));
    assert!(
        refused.contains(&registry.address)
            && refused.contains("accepted the login of `reader`")
            && refused.contains("no write (push) rights")
            && refused.contains("tok/readonly")
            && refused.contains("UNAUTHORIZED"),
        "{refused}"
    );
    assert!(!refused.contains("read-only-pat"), "{refused}");
    assert!(reread(&artifact, &store).metadata.uploaded_ref.is_none());
    assert!(registry.blob_sizes().is_empty());
}

#[test]
fn identity_tokens_are_exchanged_at_the_token_service() {
    if !tools_present() {
        return;
    }
    use base64::Engine;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let tokens = TokenService::start("alice", "not-used-here");
    let registry = Registry::start_token(&tokens);
    let destination = format!("{}/tok/idt", registry.address);
    let user = User::new();
    let store = user.store();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("identity"))])];
    let artifact =
        fixture::write_artifact(&store, "idt00001", &user.crate_dir(), &layers, Form::Layout)
            .unwrap();
    let docker_dir = user.home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    // What Docker Desktop writes: an empty password and the refresh token.
    let docker_config = |identity: &str| {
        std::fs::write(
            docker_dir.join("config.json"),
            format!(
                r#"{{"auths": {{"{}": {{"auth": "{}", "identitytoken": "{identity}"}}}}}}"#,
                registry.address,
                encode("alice:")
            ),
        )
        .unwrap();
    };

    // An expired or revoked identity token: the token service says no.
    docker_config("idt-revoked");
    let revoked = failed(&user.push("idt00001", &destination));
    assert!(
        revoked.contains(&registry.address)
            && revoked.contains("refused the identity token")
            && revoked.contains("docker login")
            && revoked.contains(&tokens.realm),
        "{revoked}"
    );
    assert!(!revoked.contains("idt-revoked"), "{revoked}");
    assert!(reread(&artifact, &store).metadata.uploaded_ref.is_none());
    assert!(registry.blob_sizes().is_empty());

    // The live one is exchanged (OAuth2 refresh-token grant) for an access
    // token, with which the push goes through.
    docker_config(&tokens.identity);
    let output = user
        .command()
        .env("RUST_LOG", "trace")
        .args(["push", "idt00001", "--to", &destination, "--json"])
        .output()
        .unwrap();
    let pushed = succeeded(&output);
    let grants: Vec<_> = tokens
        .requests()
        .into_iter()
        .filter(|r| r.granted)
        .collect();
    assert!(!grants.is_empty());
    let exchange = grants
        .iter()
        .find(|r| r.method == "POST")
        .expect("a refresh-token grant");
    assert_eq!(exchange.param("grant_type"), ["refresh_token"]);
    assert_eq!(exchange.param("client_id"), ["arca"]);
    assert_eq!(exchange.param("service"), ["arca-test"]);
    assert_eq!(exchange.param("scope"), ["repository:tok/idt:pull,push"]);
    assert!(exchange.user.is_none(), "no basic credentials were sent");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.len() > 1000, "trace logs were written");
    let mut secrets = vec![tokens.identity.clone()];
    secrets.extend(tokens.tokens());
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs"
        );
    }
    let record = std::fs::read_to_string(artifact.dir.join("metadata.toml")).unwrap();
    assert!(!record.contains(&tokens.identity));
    let inspected = skopeo_inspect(
        &format!("{destination}:demo-idt00001"),
        &["--tls-verify=false", "--creds", "alice:not-used-here"],
    );
    assert_eq!(
        Some(inspected["Digest"].as_str().unwrap()),
        pushed["ref"].as_str().unwrap().split('@').nth(1)
    );
    // A mount from that repository into another is granted through the
    // same refresh-token grant, with both scopes.
    let mut second_layers = layers.clone();
    second_layers.push(fixture::layer_tar(&[("extra", b"second")]));
    fixture::write_artifact(
        &store,
        "idt00002",
        &user.crate_dir(),
        &second_layers,
        Form::Layout,
    )
    .unwrap();
    let second = succeeded(&user.push("idt00002", &format!("{}/tok/idt2", registry.address)));
    assert_eq!(second["mounted"], 1, "{second}");
    assert!(tokens.requests().iter().any(|r| r.granted
        && r.method == "POST"
        && r.param("scope") == ["repository:tok/idt2:pull,push repository:tok/idt:pull"]));
}

#[test]
fn identity_tokens_are_renewed_before_their_access_token_expires() {
    if !tools_present() {
        return;
    }
    use base64::Engine;
    // Access tokens valid for 20 s: less than Arca's 30 s margin, so it
    // renews before every blob and before the manifest.
    // The service answers `token` only (the spec's field).
    let tokens = TokenService::start_with(
        "alice",
        "unused",
        &["pull", "push"],
        20,
        TokenReply::TokenOnly,
    );
    let registry = Registry::start_token(&tokens);
    let user = User::new();
    let store = user.store();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("renew"))])];
    fixture::write_artifact(&store, "idt00003", &user.crate_dir(), &layers, Form::Layout).unwrap();
    let docker_dir = user.home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::write(
        docker_dir.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}", "identitytoken": "{}"}}}}}}"#,
            registry.address,
            base64::engine::general_purpose::STANDARD.encode("alice:"),
            tokens.identity
        ),
    )
    .unwrap();
    succeeded(&user.push("idt00003", &format!("{}/tok/renew", registry.address)));
    let grants = tokens
        .requests()
        .iter()
        .filter(|r| r.granted && r.method == "POST")
        .count();
    // The first exchange, then one before each of the 2 blobs and the manifest.
    assert_eq!(grants, 4, "{:?}", tokens.requests());
}

#[test]
fn token_services_that_answer_access_token_only_work_too() {
    if !tools_present() {
        return;
    }
    use base64::Engine;
    let tokens = TokenService::start_with(
        "alice",
        "pw",
        &["pull", "push"],
        300,
        TokenReply::AccessTokenOnly,
    );
    let registry = Registry::start_token(&tokens);
    let user = User::new();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("oauth"))])];
    fixture::write_artifact(
        &user.store(),
        "acc00001",
        &user.crate_dir(),
        &layers,
        Form::Layout,
    )
    .unwrap();
    let auth_file = user.home.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.address,
            base64::engine::general_purpose::STANDARD.encode("alice:pw")
        ),
    )
    .unwrap();
    let destination = format!("{}/tok/oauth", registry.address);
    let output = user
        .command()
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .args(["push", "acc00001", "--to", &destination, "--json"])
        .output()
        .unwrap();
    let pushed = succeeded(&output);
    assert_eq!(pushed["uploaded"], 2, "{pushed}");
    assert!(tokens.requests().iter().all(|r| r.granted));
}

/// A registry whose upload answer sends the blob elsewhere (another
/// repository, another host): refused before a byte of the blob goes out,
/// nothing recorded, and the other host never contacted.
#[test]
fn an_upload_location_outside_the_repository_or_the_registry_is_refused() {
    if !tools_present() {
        return;
    }
    let registry = Registry::start(None, None);
    let user = User::new();
    let store = user.store();
    let layers = vec![fixture::layer_tar(&[("app", &main_source("elsewhere"))])];
    let artifact =
        fixture::write_artifact(&store, "loc00001", &user.crate_dir(), &layers, Form::Layout)
            .unwrap();
    // A listener on the "other host" that counts who connects.
    let foreign = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    foreign.set_nonblocking(true).unwrap();
    let foreign_port = foreign.local_addr().unwrap().port();
    for (mode, expected) in [
        (
            "upload-location-outside".to_owned(),
            "is outside the repository's uploads (/v2/demo/blobs/uploads/)",
        ),
        (
            format!("upload-location-foreign {foreign_port}"),
            "points away from 127.0.0.1:",
        ),
    ] {
        let (_proxy, port) = registry::registry_proxy(&registry.address, &mode);
        let refused = failed(&user.push("loc00001", &format!("127.0.0.1:{port}/demo")));
        eprintln!("{mode}: {refused}");
        assert!(refused.contains(expected), "{mode}: {refused}");
        assert!(
            refused.contains("Nothing was recorded"),
            "{mode}: {refused}"
        );
        assert!(reread(&artifact, &store).metadata.uploaded_ref.is_none());
        assert!(registry.blob_sizes().is_empty(), "{mode}: a blob arrived");
        assert!(
            foreign.accept().is_err(),
            "{mode}: the other host was contacted"
        );
    }
}
