//! `DOCKER_HOST=tcp://…` with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`: a real
//! mutual-TLS connection to the engine. A throwaway CA, server and client
//! certificates are made with `openssl`; `stunnel` terminates TLS (requiring
//! and verifying the client certificate) in front of the engine's unix
//! socket. Skipped with a note when no engine, stunnel or openssl is there,
//! unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use docker::{DockerTest, artifact_id, text};

/// Kills the TLS terminator when the test ends, also on panic.
struct Terminator(Child);

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// ca.pem, server.pem/server-key.pem (for 127.0.0.1) and the client's
/// cert.pem/key.pem, the file names DOCKER_CERT_PATH expects.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=arca-test-ca",
        ],
    );
    issue_certificate(
        dir,
        ("server-key.pem", "server.pem"),
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    issue_certificate(
        dir,
        ("key.pem", "cert.pem"),
        "/CN=arca-test-client",
        "extendedKeyUsage=clientAuth\n",
    );
}

/// A new key and a certificate for `subject` signed by the test CA, with
/// the given X.509 v3 extensions.
fn issue_certificate(dir: &Path, (key, cert): (&str, &str), subject: &str, extensions: &str) {
    std::fs::write(dir.join("extensions.cnf"), extensions).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            "request.csr",
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "request.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            cert,
            "-extfile",
            "extensions.cnf",
        ],
    );
}

fn tools_missing() -> Option<&'static str> {
    ["stunnel", "openssl"].into_iter().find(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map_or(true, |status| !status.success())
    })
}

#[test]
fn a_tls_engine_with_client_certificates_builds() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    if let Some(tool) = tools_missing() {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "ARCA_REQUIRE_DOCKER=1 but {tool} is missing (run .ci/docker-up.sh)"
        );
        eprintln!("note: skipping the TLS test: {tool} is missing");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = certs.path().join("stunnel.conf");
    std::fs::write(
        &config,
        format!(
            "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\nconnect = /var/run/docker.sock\ncert = {dir}/server.pem\nkey = {dir}/server-key.pem\nCAfile = {dir}/ca.pem\nverifyChain = yes\nrequireCert = yes\n",
            dir = certs.path().display()
        ),
    )
    .unwrap();
    let _terminator = Terminator(
        Command::new("stunnel")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stunnel"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "stunnel did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let host = format!("tcp://127.0.0.1:{port}");
    let cert_path = certs.path().to_str().unwrap();

    let output = test.build_cli_env(
        &[],
        Some(&host),
        &[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", cert_path)],
    );
    assert!(output.status.success(), "{}", text(&output));
    let id = artifact_id(&output);
    let tag = &test.store().select(&id).unwrap()[0].metadata.local_tag;
    let (stdout, code) = test.run_image(tag);
    assert_eq!((stdout.trim(), code), ("Hello from hello 0.1.0!", 0));

    // Without TLS settings the same host cannot be spoken to: a clear error.
    let output = test.build_cli(&["--force"], Some(&host));
    assert!(!output.status.success());
    assert!(
        text(&output).contains(&format!("Docker engine at {host}")),
        "{}",
        text(&output)
    );
}
