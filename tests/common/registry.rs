//! A real registry for tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a free loopback port, plain HTTP or TLS with a
//! throwaway CA and htpasswd basic auth; its request log and storage
//! directory tell what was sent. Killed on drop. Without the tools
//! (.ci/registry-setup.sh) `tools_present` is false with a note, or fails
//! when `ARCA_REQUIRE_DOCKER=1`.
#![allow(dead_code)]

// Also loaded by the other shared module: each test file may use either or both.
#[allow(clippy::duplicate_mod)]
#[path = "watchdog.rs"]
mod watchdog;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn tools_present() -> bool {
    let present = ["docker-registry", "skopeo", "htpasswd", "openssl"]
        .iter()
        .all(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
    if !present {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "ARCA_REQUIRE_DOCKER=1 but docker-registry/skopeo/htpasswd/openssl are missing: run .ci/registry-setup.sh"
        );
        eprintln!("note: docker-registry or skopeo missing (.ci/registry-setup.sh); skipping");
    }
    present
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it.
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_tls(dir: &Path) -> Tls {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=arca test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
    Tls {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

/// A registry process of this test, killed on drop.
pub struct Registry {
    child: Option<Child>,
    pub address: String,
    pub storage: PathBuf,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
    /// Ends the test binary with a report if the test using the registry hangs.
    _watchdog: watchdog::Watchdog,
}

impl Registry {
    pub fn start(tls: Option<&Tls>, htpasswd: Option<(&str, &str)>) -> Self {
        Self::start_on("127.0.0.1", tls, htpasswd)
    }

    /// A registry listening on `host` (an address of this machine).
    pub fn start_on(host: &str, tls: Option<&Tls>, htpasswd: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let address = format!("{host}:{port}");
        let storage = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
            storage.display()
        );
        if let Some(tls) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.cert.display(),
                tls.key.display()
            ));
        }
        if let Some((user, password)) = htpasswd {
            let output = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .unwrap();
            assert!(output.status.success());
            std::fs::write(dir.path().join("htpasswd"), output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: arca-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = dir.path().join("registry.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("registry.err")).unwrap())
            .spawn()
            .expect("docker-registry starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start listening on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            address,
            storage,
            log,
            _dir: dir,
            _watchdog: watchdog::Watchdog::arm(),
        }
    }

    /// Requests that start or feed a blob upload, in the access log.
    pub fn upload_requests(&self) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|line| {
                (line.contains("\"POST /v2/") || line.contains("\"PATCH /v2/"))
                    && line.contains("/blobs/uploads/")
                    && !line.contains("mount=")
            })
            .count()
    }

    /// The access log's request lines (`"GET /v2/… HTTP/1.1"` …), in order.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|line| line.contains(" /v2/"))
            .map(str::to_owned)
            .collect()
    }

    /// Where the registry keeps a blob's bytes (`sha256:<hex>` or `<hex>`).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Copies an image into the registry with skopeo (from Docker's
    /// daemon, e.g. `docker-daemon:arca-test/busybox:latest`), as
    /// `REPOSITORY:TAG`; returns `ADDRESS/REPOSITORY:TAG`.
    pub fn put_image(&self, source: &str, name: &str) -> String {
        self.put_image_with(source, name, &["--dest-tls-verify=false"])
    }

    /// [`Self::put_image`] with skopeo options of the caller's
    /// (`--dest-creds`, `--dest-cert-dir`, …) instead of
    /// `--dest-tls-verify=false`.
    pub fn put_image_with(&self, source: &str, name: &str, options: &[&str]) -> String {
        let reference = format!("{}/{name}", self.address);
        let output = Command::new("skopeo")
            .arg("copy")
            .args(options)
            .arg(source)
            .arg(format!("docker://{reference}"))
            .output()
            .expect("skopeo runs");
        assert!(
            output.status.success(),
            "skopeo copy {source} docker://{reference}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        reference
    }

    /// Blob files stored, with their sizes.
    pub fn blob_sizes(&self) -> std::collections::BTreeMap<String, u64> {
        let root = self.storage.join("docker/registry/v2/blobs/sha256");
        let mut blobs = std::collections::BTreeMap::new();
        for prefix in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for blob in std::fs::read_dir(prefix.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(meta) = std::fs::metadata(blob.path().join("data")) {
                    blobs.insert(blob.file_name().to_string_lossy().into_owned(), meta.len());
                }
            }
        }
        blobs
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
