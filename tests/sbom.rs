//! SBOMs and provenance of real builds, judged by outside tools: the SPDX
//! project's validator (`pyspdxtools`), the CycloneDX library's strict
//! JSON-schema validator, and the host's own `cargo tree` for which
//! packages the binary links.
//!
//! Fixture `tests/fixtures/real-crates/sbom`: a workspace `ws` whose member
//! `app` (`sbom-app`) links itoa, serde (no features), the member
//! `sbom-core` (no license field) and `sbom-shared`, a path dependency
//! outside the workspace (`../../shared`, an old-style `MIT/Apache-2.0`
//! license); it has an optional memchr not enabled, dev-dependencies
//! (serde with `derive`, either) and a build dependency (cc). The SBOM must
//! list exactly what cargo links for the target: no serde_derive, memchr,
//! either, cc or their dependencies.
//!
//! Checks: the SPDX document validates and its cargo packages are the host
//! `cargo tree -e normal`'s (also with the optional dependency enabled);
//! licenses, Cargo.lock checksums, relative path sources, no host path,
//! the base image as the one CONTAINER package, the image's
//! `io.khoek.arca.sbom` label; the CycloneDX conversion validates against
//! the 1.5 schema and lists the same packages; the SBOM is byte-identical
//! after a forced rebuild and for another copy in another `ARCA_HOME`; the
//! provenance statement names the image manifest of the layout and the
//! SBOM; `arca sbom` without an artifact (or an artifact without an SBOM)
//! says what to do.
//!
//! Cargo downloads go to the shared cargo home of `tests/real_crates.rs`
//! (`ARCA_TEST_CARGO_CACHE`, default `/var/cache/arca-crates/cargo-home`).
//!
//! Needs `.ci/docker-up.sh`, `.ci/fixtures.sh` and `.ci/sbom-setup.sh` (the
//! venv `/var/cache/arca-sbom/venv`, `ARCA_SBOM_VENV` overrides it);
//! without an engine or the venv each test prints a note and passes, unless
//! `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use docker::{DockerTest, text};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The image label naming the SBOM blob.
const SBOM_LABEL: &str = "io.khoek.arca.sbom";

/// Packages the build pulls in but the binary does not link (optional and
/// off, dev-only, build-only, or only reached through those).
const NOT_LINKED: [&str; 10] = [
    "serde_derive",
    "memchr",
    "either",
    "cc",
    "shlex",
    "find-msvc-tools",
    "proc-macro2",
    "quote",
    "syn",
    "unicode-ident",
];

/// What the binary links, by name.
const LINKED: [&str; 6] = [
    "sbom-app",
    "itoa",
    "sbom-core",
    "sbom-shared",
    "serde",
    "serde_core",
];

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-crates")
}

/// The venv of `.ci/sbom-setup.sh`, or `None` (test skipped with a note)
/// when its tools are missing; fails when `ARCA_REQUIRE_DOCKER=1`.
fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("ARCA_SBOM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/arca-sbom/venv"));
    let present = dir.join("bin/pyspdxtools").is_file() && dir.join("bin/python").is_file();
    if present {
        return Some(dir);
    }
    let why = format!(
        "the SBOM tools' venv {} (pyspdxtools, cyclonedx-python-lib) is missing",
        dir.display()
    );
    if std::env::var("ARCA_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("ARCA_REQUIRE_DOCKER=1 but {why}. Run .ci/sbom-setup.sh.");
    }
    eprintln!("note: skipping the SBOM test: {why} (run .ci/sbom-setup.sh)");
    None
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// One copy of the fixture (`<work>/sbom/{ws,shared}`, the crate
/// `ws/app`) with its own `ARCA_HOME` on the shared cargo home.
struct SbomCrate {
    test: DockerTest,
}

impl SbomCrate {
    fn new() -> Option<Self> {
        let test = DockerTest::with_crate(&fixture_root().join("sbom"), "sbom", "ws/app")?;
        let rust_cache = test.home.path().join("cache/rust");
        std::fs::create_dir_all(&rust_cache).expect("rust cache");
        std::os::unix::fs::symlink(docker::shared_cargo_home(), rust_cache.join("cargo-home"))
            .expect("link the shared cargo home");
        Some(Self { test })
    }

    /// Builds (plus `extra`); the new artifact's id.
    fn build(&self, extra: &[&str]) -> String {
        let output = self.test.build_cli(extra, None);
        assert!(output.status.success(), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("gets no SBOM"),
            "the build made no SBOM:\n{stderr}"
        );
        docker::artifact_id(&output)
    }

    /// `arca sbom ARGS` with this copy's `ARCA_HOME`.
    fn sbom(&self, args: &[&str]) -> Output {
        self.test.watchdog.step(format!("arca sbom {args:?}"));
        self.test
            .arca()
            .arg("sbom")
            .args(args)
            .output()
            .expect("run arca sbom")
    }

    /// `arca sbom <crate dir> EXTRA -o <work>/<file>`: the file's bytes.
    fn sbom_file(&self, extra: &[&str], file: &str) -> (PathBuf, Vec<u8>) {
        let path = self.test.work.path().join(file);
        let dir = self.test.crate_dir.display().to_string();
        let mut args = vec![dir.as_str()];
        args.extend_from_slice(extra);
        args.extend(["-o", path.to_str().expect("UTF-8 path")]);
        let output = self.sbom(&args);
        assert!(output.status.success(), "{}", text(&output));
        let bytes = std::fs::read(&path).expect("the written SBOM");
        (path, bytes)
    }

    /// The artifact record `arca list --json` shows for `id`.
    fn record(&self, id: &str) -> Value {
        let output = self
            .test
            .arca()
            .args(["list", "--json"])
            .output()
            .expect("arca list");
        assert!(output.status.success(), "{}", text(&output));
        let records: Vec<Value> = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", text(&output)));
        records
            .into_iter()
            .find(|record| record["artifact_id"] == id)
            .unwrap_or_else(|| panic!("no artifact {id} in `arca list --json`"))
    }

    /// The artifact's OCI layout directory.
    fn layout(&self, id: &str) -> PathBuf {
        self.test
            .home
            .path()
            .join("containers")
            .join(id)
            .join("image")
    }

    /// `cargo tree -e normal` of the copy on the host, for the host
    /// triple and `features`: the linked packages as `name@version`.
    fn host_cargo_tree(&self, features: &[&str]) -> BTreeSet<String> {
        let host = host_triple();
        let output = Command::new("cargo")
            .args(["tree", "--locked", "-e", "normal", "--target", &host])
            .args(["--prefix", "none", "--format", "{p}"])
            .args(features.iter().flat_map(|feature| ["--features", feature]))
            .arg("--manifest-path")
            .arg(self.test.crate_dir.join("Cargo.toml"))
            .env("CARGO_HOME", docker::shared_cargo_home())
            .output()
            .expect("host cargo tree");
        assert!(
            output.status.success(),
            "host cargo tree: {}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next().expect("a name");
                let version = words
                    .next()
                    .and_then(|word| word.strip_prefix('v'))
                    .unwrap_or_else(|| panic!("no version in `{line}`"));
                format!("{name}@{version}")
            })
            .collect()
    }
}

/// `pkg:cargo/<name>@<version>[?…]` → `name@version`.
fn cargo_purl(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:cargo/")?;
    Some(rest.split('?').next().unwrap_or(rest).to_owned())
}

/// The SPDX packages' purls (externalRefs of type purl).
fn spdx_purls(package: &Value) -> Vec<&str> {
    package["externalRefs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|reference| reference["referenceType"] == "purl")
        .filter_map(|reference| reference["referenceLocator"].as_str())
        .collect()
}

/// The document's cargo packages as `name@version`.
fn spdx_cargo_set(document: &Value) -> BTreeSet<String> {
    packages(document)
        .iter()
        .flat_map(spdx_purls)
        .filter_map(cargo_purl)
        .collect()
}

fn packages(document: &Value) -> &Vec<Value> {
    document["packages"].as_array().expect("a packages array")
}

fn package<'a>(document: &'a Value, name: &str) -> &'a Value {
    packages(document)
        .iter()
        .find(|package| package["name"] == name)
        .unwrap_or_else(|| panic!("no package {name} in the SBOM"))
}

fn names(set: &BTreeSet<String>) -> BTreeSet<&str> {
    set.iter()
        .map(|entry| entry.split('@').next().expect("name"))
        .collect()
}

/// Runs the SPDX project's validator on `file`; panics with its report
/// when the document is invalid.
fn pyspdxtools_validates(venv: &Path, file: &Path) {
    let output = Command::new(venv.join("bin/pyspdxtools"))
        .arg("-i")
        .arg(file)
        .output()
        .expect("run pyspdxtools");
    let report = text(&output);
    assert!(output.status.success(), "pyspdxtools: {report}");
    // It logs problems as errors ("The document is invalid…", "issues
    // while parsing…") and exits 1; nothing else is expected on success.
    for word in ["invalid", "issues", "ERROR"] {
        assert!(!report.contains(word), "pyspdxtools: {report}");
    }
}

/// The CycloneDX library's strict 1.5 JSON-schema validator on `file`:
/// `None` when valid, else the first error.
fn cyclonedx_error(venv: &Path, file: &Path) -> Option<String> {
    const SCRIPT: &str = r#"
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
with open(sys.argv[1]) as f:
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(f.read())
if error is not None:
    data = getattr(error, "data", None)
    print(getattr(data, "message", error))
    print("at", list(getattr(data, "absolute_path", [])))
    sys.exit(3)
print("valid")
"#;
    let output = Command::new(venv.join("bin/python"))
        .args(["-c", SCRIPT])
        .arg(file)
        .output()
        .expect("run the CycloneDX validator");
    match output.status.code() {
        Some(0) => {
            assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "valid");
            None
        }
        Some(3) => Some(String::from_utf8_lossy(&output.stdout).into_owned()),
        _ => panic!("the CycloneDX validator did not run: {}", text(&output)),
    }
}

/// Two SBOMs are the same bytes, else a panic showing where they first
/// differ (the namespace hashes the content, so also the first package or
/// relationship that differs).
fn assert_same_bytes(left: &[u8], right: &[u8], what: &str) {
    if left == right {
        return;
    }
    let at = left
        .iter()
        .zip(right)
        .position(|(a, b)| a != b)
        .unwrap_or(left.len().min(right.len()));
    let window = |bytes: &[u8]| {
        let start = at.saturating_sub(60);
        String::from_utf8_lossy(&bytes[start..(at + 60).min(bytes.len())]).into_owned()
    };
    let parsed = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap_or_default();
    let (a, b) = (parsed(left), parsed(right));
    let first_other = ["packages", "relationships"].iter().find_map(|key| {
        let (a, b) = (a[key].as_array()?, b[key].as_array()?);
        let index = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
        Some(format!(
            "{key}[{index}]:\n  {}\n  {}",
            a.get(index).unwrap_or(&Value::Null),
            b.get(index).unwrap_or(&Value::Null)
        ))
    });
    panic!(
        "{what}: {} and {} bytes, first different at byte {at}:\n  {}\n  {}\n{}",
        left.len(),
        right.len(),
        window(left),
        window(right),
        first_other.unwrap_or_default()
    );
}

/// The engine's labels of an image (`docker image inspect`).
fn image_label(tag: &str, label: &str) -> Option<String> {
    let labels = docker::docker_cli(&["image", "inspect", "-f", "{{json .Config.Labels}}", tag]);
    let labels: Value = serde_json::from_str(&labels).expect("labels JSON");
    labels[label].as_str().map(str::to_owned)
}

#[test]
fn the_spdx_document_validates_and_lists_what_cargo_links() {
    let Some(sbom) = SbomCrate::new() else {
        return;
    };
    let Some(venv) = venv() else {
        return;
    };
    let id = sbom.build(&[]);
    let (file, bytes) = sbom.sbom_file(&[], "sbom.spdx.json");
    pyspdxtools_validates(&venv, &file);

    // Printed, the same bytes.
    let dir = sbom.test.crate_dir.display().to_string();
    let printed = sbom.sbom(&[&dir]);
    assert!(printed.status.success(), "{}", text(&printed));
    assert_eq!(printed.stdout, [bytes.as_slice(), b"\n"].concat());

    let document: Value = serde_json::from_slice(&bytes).expect("SPDX JSON");
    let listed = spdx_cargo_set(&document);
    let cargo = sbom.host_cargo_tree(&[]);
    assert_eq!(listed, cargo, "the SBOM's packages against cargo tree's");
    assert_eq!(names(&listed), BTreeSet::from(LINKED), "{listed:?}");
    for name in NOT_LINKED {
        assert!(
            !names(&listed).contains(name)
                && packages(&document)
                    .iter()
                    .all(|package| package["name"] != name),
            "{name} is not linked but the SBOM lists it"
        );
    }

    // Licenses: declared SPDX expressions as written, else no assertion.
    assert_eq!(
        package(&document, "sbom-app")["licenseDeclared"],
        "MIT OR Apache-2.0"
    );
    assert_eq!(
        package(&document, "sbom-core")["licenseDeclared"],
        "NOASSERTION"
    );
    assert_eq!(
        package(&document, "sbom-shared")["licenseDeclared"],
        "NOASSERTION"
    );
    // crates.io packages carry Cargo.lock's checksum; local ones none.
    let lock: toml::Value = toml::from_str(
        &std::fs::read_to_string(sbom.test.crate_dir.join("../Cargo.lock")).expect("Cargo.lock"),
    )
    .expect("Cargo.lock TOML");
    let mut checked = 0;
    for entry in lock["package"].as_array().expect("lock packages") {
        let (name, version) = (entry["name"].as_str(), entry["version"].as_str());
        let Some(listed) = packages(&document).iter().find(|package| {
            package["name"].as_str() == name && package["versionInfo"].as_str() == version
        }) else {
            continue;
        };
        let checksums: Vec<(&str, &str)> = listed["checksums"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|checksum| {
                (
                    checksum["algorithm"].as_str().unwrap_or_default(),
                    checksum["checksumValue"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        match entry.get("checksum").and_then(toml::Value::as_str) {
            Some(sum) => assert_eq!(checksums, [("SHA256", sum)], "{listed}"),
            None => assert!(checksums.is_empty(), "{listed}"),
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        LINKED.len(),
        "every linked package is in Cargo.lock"
    );
    let shared_source = package(&document, "sbom-shared")["sourceInfo"]
        .as_str()
        .unwrap_or_default();
    assert!(shared_source.contains("../shared"), "{shared_source}");

    // No host path of this test.
    let text_of = String::from_utf8_lossy(&bytes);
    for path in [
        sbom.test.work.path().to_path_buf(),
        sbom.test.work.path().canonicalize().expect("work"),
        sbom.test.home.path().to_path_buf(),
        docker::shared_cargo_home(),
    ] {
        let path = path.display().to_string();
        assert!(!text_of.contains(&path), "the SBOM names {path}");
    }
    assert!(!text_of.contains("/tmp/"), "the SBOM names /tmp/");

    // The base image: one CONTAINER package, by purl and image id.
    let containers: Vec<&Value> = packages(&document)
        .iter()
        .filter(|package| package["primaryPackagePurpose"] == "CONTAINER")
        .collect();
    assert_eq!(containers.len(), 1, "{containers:?}");
    let base_purls = spdx_purls(containers[0]);
    assert!(
        base_purls.len() == 1 && base_purls[0].starts_with("pkg:oci/"),
        "{base_purls:?}"
    );
    let base_id = docker::docker_cli(&["image", "inspect", "-f", "{{.Id}}", docker::RUNTIME_BASE]);
    assert!(
        base_purls[0].contains(&format!("@{}", base_id.replace(':', "%3A")))
            || base_purls[0].contains(&format!("@{base_id}")),
        "{} is not {base_id}",
        base_purls[0]
    );

    // The image's label names the document.
    let tag = sbom.record(&id)["local_tag"]
        .as_str()
        .expect("local_tag")
        .to_owned();
    assert_eq!(
        image_label(&tag, SBOM_LABEL),
        Some(format!("sha256:{}", sha256_hex(&bytes)))
    );
}

#[test]
fn an_enabled_optional_dependency_joins_the_sbom() {
    let Some(sbom) = SbomCrate::new() else {
        return;
    };
    sbom.build(&["--features", "memchr"]);
    let (_, bytes) = sbom.sbom_file(&[], "sbom.spdx.json");
    let listed = spdx_cargo_set(&serde_json::from_slice(&bytes).expect("SPDX JSON"));
    assert!(names(&listed).contains("memchr"), "{listed:?}");
    assert_eq!(listed, sbom.host_cargo_tree(&["memchr"]));
}

#[test]
fn the_cyclonedx_conversion_validates_and_lists_the_same_packages() {
    let Some(sbom) = SbomCrate::new() else {
        return;
    };
    let Some(venv) = venv() else {
        return;
    };
    sbom.build(&[]);
    let (_, spdx) = sbom.sbom_file(&[], "sbom.spdx.json");
    let (file, bytes) = sbom.sbom_file(&["--format", "cyclonedx"], "sbom.cdx.json");
    if let Some(error) = cyclonedx_error(&venv, &file) {
        panic!(
            "the CycloneDX BOM is invalid: {error}\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let bom: Value = serde_json::from_slice(&bytes).expect("CycloneDX JSON");
    assert_eq!(bom["specVersion"], "1.5");
    let components: BTreeSet<String> = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|component| component["purl"].as_str())
        .filter_map(cargo_purl)
        .collect();
    let root = bom["metadata"]["component"]["purl"]
        .as_str()
        .and_then(cargo_purl)
        .expect("the root component's cargo purl");
    assert!(root.starts_with("sbom-app@"), "{root}");
    let mut expected = spdx_cargo_set(&serde_json::from_slice(&spdx).expect("SPDX JSON"));
    assert!(expected.remove(&root), "{root} in {expected:?}");
    assert_eq!(components, expected);
}

#[test]
fn the_sbom_is_the_same_bytes_after_a_forced_rebuild_and_for_another_copy() {
    let Some(first) = SbomCrate::new() else {
        return;
    };
    let id = first.build(&[]);
    let forced = first.build(&["--force"]);
    assert_ne!(id, forced, "--force made a new artifact");
    let of = |sbom: &SbomCrate, id: &str| {
        let output = sbom.sbom(&[id]);
        assert!(output.status.success(), "{}", text(&output));
        output.stdout
    };
    let bytes = of(&first, &id);
    assert!(!bytes.is_empty());
    assert_same_bytes(&bytes, &of(&first, &forced), "a forced rebuild's SBOM");

    let Some(second) = SbomCrate::new() else {
        return;
    };
    assert_ne!(second.test.crate_dir, first.test.crate_dir);
    let other = second.build(&[]);
    assert_same_bytes(
        &bytes,
        &of(&second, &other),
        "another copy's SBOM (another path, another ARCA_HOME)",
    );
    // And so the images' labels.
    let label = |sbom: &SbomCrate, id: &str| {
        let tag = sbom.record(id)["local_tag"]
            .as_str()
            .expect("local_tag")
            .to_owned();
        image_label(&tag, SBOM_LABEL).expect("the SBOM label")
    };
    assert_eq!(label(&first, &id), label(&second, &other));
}

#[test]
fn the_provenance_names_the_image_manifest_and_the_sbom() {
    let Some(sbom) = SbomCrate::new() else {
        return;
    };
    let id = sbom.build(&[]);
    let dir = sbom.test.crate_dir.display().to_string();
    let output = sbom.sbom(&[&dir, "--provenance"]);
    assert!(output.status.success(), "{}", text(&output));
    let statement: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output)));
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");

    // The layout: the image manifest first, then the artifacts referring
    // to it, each document stored as the blob its manifest names.
    let layout = sbom.layout(&id);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index JSON");
    let manifests = index["manifests"].as_array().expect("manifests");
    let image = manifests[0]["digest"].as_str().expect("image digest");
    assert!(manifests[0].get("artifactType").is_none(), "{index}");
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob");
        assert_eq!(sha256_hex(&bytes), hex, "the blob {digest} is its digest");
        bytes
    };
    let document_of = |artifact_type: &str| -> Vec<u8> {
        let entries: Vec<&Value> = manifests
            .iter()
            .filter(|entry| entry["artifactType"] == artifact_type)
            .collect();
        assert_eq!(entries.len(), 1, "one {artifact_type} in {index}");
        let manifest: Value = serde_json::from_slice(&blob(
            entries[0]["digest"].as_str().expect("artifact digest"),
        ))
        .expect("artifact manifest");
        assert_eq!(manifest["artifactType"], artifact_type);
        assert_eq!(manifest["subject"]["digest"], image, "{manifest}");
        blob(manifest["layers"][0]["digest"].as_str().expect("layer"))
    };
    let spdx = document_of("application/spdx+json");
    let provenance = document_of("application/vnd.in-toto+json");
    assert_eq!(
        [provenance.as_slice(), b"\n"].concat(),
        output.stdout,
        "`arca sbom --provenance` prints the stored statement"
    );
    let (_, written) = sbom.sbom_file(&[], "sbom.spdx.json");
    assert_eq!(spdx, written, "`arca sbom` writes the stored SBOM");

    let subjects = statement["subject"].as_array().expect("subject");
    assert_eq!(subjects.len(), 1, "{statement}");
    assert_eq!(
        subjects[0]["digest"]["sha256"],
        image.strip_prefix("sha256:").expect("sha256"),
        "{statement}"
    );
    let resolved = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .expect("resolvedDependencies");
    assert!(
        resolved
            .iter()
            .any(|dependency| dependency["digest"]["sha256"] == sha256_hex(&spdx)),
        "no resolved dependency is the SBOM {}: {resolved:?}",
        sha256_hex(&spdx)
    );
    // No host path in the statement either.
    let statement_text = String::from_utf8_lossy(&provenance);
    assert!(!statement_text.contains("/tmp/"), "{statement_text}");

    // An artifact stored without them (as before Arca recorded them): the
    // error says how to get them.
    let mut bare = index.clone();
    bare["manifests"] = Value::Array(vec![manifests[0].clone()]);
    std::fs::write(layout.join("index.json"), bare.to_string()).expect("rewrite index.json");
    for extra in [&[][..], &["--provenance"][..]] {
        let mut args = vec![id.as_str()];
        args.extend_from_slice(extra);
        let output = sbom.sbom(&args);
        assert!(!output.status.success(), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&id) && stderr.contains("arca build rust --force"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "{}", text(&output));
    }
}

#[test]
fn an_sbom_of_a_crate_without_an_artifact_says_to_build_it() {
    // No engine needed: nothing is built.
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    docker::copy_tree(&fixture_root().join("sbom"), &work.path().join("sbom"));
    let crate_dir = work.path().join("sbom/ws/app");
    let out = work.path().join("never.json");
    let arca = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_arca"))
            .arg("sbom")
            .args(args)
            .env("ARCA_HOME", home.path())
            .output()
            .expect("run arca sbom")
    };
    let dir = crate_dir.display().to_string();
    let cases: [(&[&str], &str); 3] = [
        (&[&dir], "arca build rust"),
        (
            &[
                &dir,
                "--format",
                "cyclonedx",
                "-o",
                out.to_str().expect("path"),
            ],
            "arca build rust",
        ),
        (&["sbom-app", "--provenance"], "arca list"),
    ];
    for (args, advice) in cases {
        let output = arca(args);
        assert!(!output.status.success(), "{args:?}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("No artifact") && stderr.contains(advice),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: {}", text(&output));
    }
    assert!(!out.exists(), "no file written");
}

/// A git dependency, resolved by the real cargo from a repository on disk
/// (no git host is reachable here): the SBOM names it by its URL and the
/// locked commit, as `git rev-parse HEAD` gives it, with a `vcs_url` purl.
/// Runs cargo on the host only; no engine needed.
#[test]
fn a_git_dependency_is_named_by_its_url_and_commit() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("gitdep");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(
        repo.join("Cargo.toml"),
        "[package]\nname = \"gitdep\"\nversion = \"0.3.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(repo.join("src/lib.rs"), "pub fn one() -> u8 { 1 }\n").unwrap();
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    let commit = git(&["rev-parse", "HEAD"]);
    let app = work.path().join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    let url = format!("file://{}", repo.display());
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngitdep = {{ git = \"{url}\" }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(app.join("src/main.rs"), "fn main() { gitdep::one(); }\n").unwrap();
    let home = work.path().join("cargo-home");
    let locked = Command::new("cargo")
        .args(["generate-lockfile", "--manifest-path"])
        .arg(app.join("Cargo.toml"))
        .env("CARGO_HOME", &home)
        .output()
        .unwrap();
    assert!(locked.status.success(), "{}", text(&locked));
    let target = host_triple();
    let manifests = vec![app.join("Cargo.toml")];
    let linked = arca::sbom::linked::resolve(
        &arca::sbom::linked::Request {
            manifest_path: &app.join("Cargo.toml"),
            workspace_root: &app,
            target: &target,
            features: &[],
            cargo_home: Some(&home),
            manifests: &manifests,
        },
        None,
    )
    .expect("the graph resolves");
    let names: Vec<&str> = linked.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["app", "gitdep"]);
    let dep = &linked.packages[1];
    assert_eq!(
        dep.source,
        arca::sbom::Source::Git {
            url: url.clone(),
            commit: commit.clone()
        }
    );
    assert_eq!(dep.license.as_deref(), Some("MIT"));
    assert_eq!(dep.checksum, None, "git packages have no lock checksum");
    assert!(
        dep.purl()
            .starts_with("pkg:cargo/gitdep@0.3.0?vcs_url=git%2Bfile:"),
        "{}",
        dep.purl()
    );
    assert!(
        dep.purl().ends_with(&format!("%40{commit}")),
        "{}",
        dep.purl()
    );
    assert_eq!(linked.depends_on, [(0, 1)]);
}

/// The host's target triple (`rustc -vV`).
fn host_triple() -> String {
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .expect("a host line in rustc -vV")
}
