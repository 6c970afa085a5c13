//! A real registry for tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a free loopback port, plain HTTP or TLS with a
//! throwaway CA and htpasswd basic auth; its request log and storage
//! directory tell what was sent. Killed on drop. Without the tools
//! (.ci/registry-setup.sh) `tools_present` is false with a note, or fails
//! when `ARCA_REQUIRE_DOCKER=1`.
//!
//! A two-platform base for the multi-platform tests: the OCI image layout
//! [`MULTI_PLATFORM_BASE_LAYOUT`] made by `.ci/fixtures.sh` (with
//! `.ci/oci-layout.py`, from Debian's arm64 packages that
//! `.ci/cross-setup.sh` makes reachable), pushed whole by
//! [`Registry::put_multi_platform_base`]; [`multi_platform_base_present`]
//! says whether it is there.
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

/// An OCI image layout whose `latest` ([`MULTI_PLATFORM_BASE_REF`]) is an
/// image index of two single-layer images with their `platform`:
/// linux/amd64, the layer of `arca-test/busybox:latest` (busybox-static,
/// glibc runtime libraries, CA bundle), and linux/arm64, the same recipe
/// from Debian bookworm's arm64 `busybox-static`, `libc6` and `libgcc-s1`
/// (the loader at `/lib/ld-linux-aarch64.so.1`). Each config has `os`,
/// `architecture`, `rootfs.diff_ids` and `Env` `PATH=…`; layers are gzip.
/// Written by `.ci/fixtures.sh` (section (d)), rebuilt when its
/// `MULTI_VERSION` changes.
pub const MULTI_PLATFORM_BASE_LAYOUT: &str = "/var/cache/arca-fixtures/multi-base-oci";

/// The tag of the index in [`MULTI_PLATFORM_BASE_LAYOUT`]'s `index.json`.
pub const MULTI_PLATFORM_BASE_REF: &str = "latest";

/// Whether [`MULTI_PLATFORM_BASE_LAYOUT`] is there; without it a note, or a
/// failure when `ARCA_REQUIRE_DOCKER=1`.
pub fn multi_platform_base_present() -> bool {
    let present = Path::new(MULTI_PLATFORM_BASE_LAYOUT)
        .join("index.json")
        .is_file();
    if !present {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "ARCA_REQUIRE_DOCKER=1 but the multi-platform base {MULTI_PLATFORM_BASE_LAYOUT} is missing: run .ci/cross-setup.sh and .ci/fixtures.sh"
        );
        eprintln!(
            "note: no multi-platform base at {MULTI_PLATFORM_BASE_LAYOUT} (.ci/cross-setup.sh, .ci/fixtures.sh); skipping"
        );
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
        openssl(dir, args, b"");
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
        Self::launch(host, tls, htpasswd, None)
    }

    /// A plain-HTTP loopback registry in token mode: it answers
    /// `WWW-Authenticate: Bearer realm=…,service=…` and accepts only JWTs
    /// signed by `tokens`' key, for the scopes they grant.
    pub fn start_token(tokens: &TokenService) -> Self {
        Self::launch("127.0.0.1", None, None, Some(tokens))
    }

    fn launch(
        host: &str,
        tls: Option<&Tls>,
        htpasswd: Option<(&str, &str)>,
        tokens: Option<&TokenService>,
    ) -> Self {
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
        if let Some(tokens) = tokens {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                tokens.realm,
                tokens.service,
                tokens.issuer,
                tokens.cert.display()
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

    /// Copies the multi-platform base ([`MULTI_PLATFORM_BASE_LAYOUT`]) into
    /// the registry with skopeo, every platform and the index itself
    /// (`skopeo copy --all`, digests kept), as `REPOSITORY:TAG`; returns
    /// `ADDRESS/REPOSITORY:TAG`. Check [`multi_platform_base_present`] first.
    pub fn put_multi_platform_base(&self, name: &str) -> String {
        self.put_image_with(
            &format!("oci:{MULTI_PLATFORM_BASE_LAYOUT}:{MULTI_PLATFORM_BASE_REF}"),
            name,
            &["--all", "--dest-tls-verify=false"],
        )
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

/// Runs `openssl ARGS` in `dir`, feeding `input` on stdin; its stdout.
fn openssl(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// One request the token service answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The decoded query parameters, in order (`scope` may repeat).
    pub query: Vec<(String, String)>,
    /// The basic-auth user the client sent, if any.
    pub user: Option<String>,
    /// Whether a token was issued (right credentials).
    pub granted: bool,
}

impl TokenRequest {
    pub fn param(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[derive(Default)]
struct TokenLog {
    requests: Vec<TokenRequest>,
    tokens: Vec<String>,
}

/// A token service like Docker Hub's `auth.docker.io`, GHCR's or
/// Harbor's, for a registry in token mode: `GET /token?service=…&scope=…`
/// with basic credentials answers `{"token": JWT, "access_token": JWT}`, the
/// JWT RS256-signed (by `openssl dgst -sha256 -sign`, PKCS#1 v1.5) with a
/// throwaway key whose self-signed certificate travels in the `x5c` header
/// and is the registry's `rootcertbundle`; the claims grant exactly the
/// requested scopes. `POST /token` with the OAuth2 refresh-token grant (an
/// identity token) is answered the same way. Wrong or missing credentials
/// → 401. Stopped on drop.
pub struct TokenService {
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    pub service: &'static str,
    pub issuer: &'static str,
    /// The signing certificate (PEM), for the registry's `rootcertbundle`.
    pub cert: PathBuf,
    /// Token lifetime in seconds (the `exp` claim).
    pub lifetime: u64,
    /// The user's identity token (an OAuth2 refresh token, as Docker
    /// Desktop keeps in `identitytoken`): `POST /token` with
    /// `grant_type=refresh_token&refresh_token=…` is granted like the
    /// password.
    pub identity: String,
    log: std::sync::Arc<std::sync::Mutex<TokenLog>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    address: String,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TokenService {
    pub fn start(user: &str, password: &str) -> Self {
        Self::start_allowing(user, password, &["pull", "push"])
    }

    /// A service whose user may only do `allowed` (e.g. `["pull"]`, a
    /// read-only access token): like Docker Hub, it still answers 200 with a
    /// token that grants the requested actions it allows, and no others.
    pub fn start_allowing(user: &str, password: &str, allowed: &[&'static str]) -> Self {
        Self::start_with(user, password, allowed, 300, TokenReply::Both)
    }

    /// [`Self::start_allowing`] with tokens that expire after `lifetime`
    /// seconds (`exp` claim and `expires_in`).
    pub fn start_with(
        user: &str,
        password: &str,
        allowed: &[&'static str],
        lifetime: u64,
        reply: TokenReply,
    ) -> Self {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=arca-test-issuer",
                "-keyout",
                "token.key",
                "-out",
                "token.crt",
            ],
            b"",
        );
        let der = openssl(
            dir.path(),
            &["x509", "-in", "token.crt", "-outform", "DER"],
            b"",
        );
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let log = std::sync::Arc::new(std::sync::Mutex::new(TokenLog::default()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut service = Self {
            realm: format!("http://{address}/token"),
            service: "arca-test",
            issuer: "arca-test-issuer",
            cert: dir.path().join("token.crt"),
            lifetime,
            identity: String::new(),
            log: log.clone(),
            stop: stop.clone(),
            address,
            thread: None,
            _dir: dir,
        };
        let signer = Signer {
            dir: service._dir.path().to_owned(),
            x5c,
            service: service.service,
            issuer: service.issuer,
            lifetime: service.lifetime,
            user: user.to_owned(),
            password: password.to_owned(),
            allowed: allowed.to_vec(),
            identity: format!("idt-{}{}", rand_hex(), rand_hex()),
            reply,
        };
        service.identity = signer.identity.clone();
        service.thread = Some(std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let signer = signer.clone();
                let log = log.clone();
                std::thread::spawn(move || signer.answer(stream, &log));
            }
        }));
        service
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Every token issued so far (to look for in logs).
    pub fn tokens(&self) -> Vec<String> {
        self.log.lock().unwrap().tokens.clone()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Clone)]
struct Signer {
    dir: PathBuf,
    x5c: String,
    service: &'static str,
    issuer: &'static str,
    lifetime: u64,
    user: String,
    password: String,
    allowed: Vec<&'static str>,
    identity: String,
    reply: TokenReply,
}

/// Which fields a granted token comes in: token services differ (the spec
/// names `token`; OAuth2 ones such as Azure's answer `access_token` only).
#[derive(Clone, Copy, Debug)]
pub enum TokenReply {
    Both,
    TokenOnly,
    AccessTokenOnly,
}

impl Signer {
    fn answer(&self, mut stream: std::net::TcpStream, log: &std::sync::Mutex<TokenLog>) {
        use base64::Engine;
        use std::io::{Read, Write};
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.lines();
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let target = first.next().unwrap_or_default();
        let mut basic = None;
        let mut length = 0usize;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("authorization") {
                basic = value
                    .strip_prefix("Basic ")
                    .and_then(|encoded| {
                        base64::engine::general_purpose::STANDARD
                            .decode(encoded)
                            .ok()
                    })
                    .and_then(|bytes| String::from_utf8(bytes).ok());
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length.min(1 << 20)];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut params = parse_query(query);
        params.extend(parse_query(&String::from_utf8_lossy(&body)));
        let user = basic
            .as_deref()
            .map(|login| login.split_once(':').map_or(login, |(u, _)| u).to_owned());
        let refresh = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let granted = path == "/token"
            && (basic.as_deref() == Some(&format!("{}:{}", self.user, self.password))
                || (method == "POST"
                    && refresh("grant_type") == Some("refresh_token")
                    && refresh("refresh_token") == Some(self.identity.as_str())));
        let request = TokenRequest {
            method,
            query: params.clone(),
            user,
            granted,
        };
        let reply = if granted {
            let token = self.token(&request);
            let mut body = serde_json::json!({ "expires_in": self.lifetime });
            if !matches!(self.reply, TokenReply::AccessTokenOnly) {
                body["token"] = token.clone().into();
            }
            if !matches!(self.reply, TokenReply::TokenOnly) {
                body["access_token"] = token.clone().into();
            }
            let body = body.to_string();
            log.lock().unwrap().tokens.push(token);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            let body = r#"{"details":"incorrect username or password"}"#;
            format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"arca-test\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        log.lock().unwrap().requests.push(request);
        let _ = stream.write_all(reply.as_bytes());
    }

    /// An RS256 JWT granting exactly the requested `repository:NAME:ACTIONS`
    /// scopes to the user, for this service.
    fn token(&self, request: &TokenRequest) -> String {
        use base64::Engine;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let access: Vec<serde_json::Value> = request
            .param("scope")
            .iter()
            .flat_map(|scopes| scopes.split(' '))
            .filter_map(|scope| {
                let rest = scope.strip_prefix("repository:")?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({
                    "type": "repository",
                    "name": name,
                    "actions": actions
                        .split(',')
                        .filter(|action| self.allowed.contains(action))
                        .collect::<Vec<_>>(),
                }))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": self.user,
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now - 1,
            "iat": now,
            "jti": format!("{now}-{}", rand_hex()),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            url.encode(header.to_string()),
            url.encode(claims.to_string())
        );
        let signature = openssl(
            &self.dir,
            &["dgst", "-sha256", "-sign", "token.key"],
            input.as_bytes(),
        );
        format!("{input}.{}", url.encode(signature))
    }
}

fn rand_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    format!("{:016x}", hasher.finish())
}

/// `a=b&c=d` with `%XX` and `+` decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                },
                byte => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// `tests/support/registry_proxy.py` in `mode` before the registry at
/// `upstream`: the running proxy and its port. A mode taking an argument
/// is written `MODE ARG`.
pub fn registry_proxy(upstream: &str, mode: &str) -> (Proxy, String) {
    registry_proxy_over(upstream, mode, None)
}

/// [`registry_proxy`], speaking HTTPS with `tls`'s server certificate when
/// given.
pub fn registry_proxy_over(upstream: &str, mode: &str, tls: Option<&Tls>) -> (Proxy, String) {
    let mut command = Command::new("python3");
    if let Some(tls) = tls {
        command
            .env("PROXY_TLS_CERT", &tls.cert)
            .env("PROXY_TLS_KEY", &tls.key);
    }
    let mut proxy = command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/registry_proxy.py"
        ))
        .arg(upstream)
        .args(mode.split(' '))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the registry proxy");
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(proxy.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    (Proxy(proxy), port.trim().to_owned())
}

/// The proxy process, killed on drop (a failed assertion included).
pub struct Proxy(std::process::Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
