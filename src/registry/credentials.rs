//! Registry credentials where users already keep them: `REGISTRY_AUTH_FILE`,
//! podman's `${XDG_RUNTIME_DIR}/containers/auth.json`, and Docker's
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), each
//! with `credHelpers`, `credsStore` (run as `docker-credential-NAME get`)
//! and `auths` (base64 `user:password`, or `username`/`password`,
//! `registrytoken`, `identitytoken`: an OAuth refresh token that
//! `registry::token` exchanges for an access token).
//!
//! **Secrets never leave this module except into the HTTP client:** the
//! [`Secret`] type prints as `***` in `Debug`, nothing here logs a value,
//! and nothing is written anywhere.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use super::helper_process::{self, HelperFailure};

/// A password or token; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the HTTP client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

/// How to authenticate to one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Username and password (basic auth, or exchanged for a bearer token
    /// when the registry asks for one).
    Password { username: String, password: Secret },
    /// A registry token sent as `Authorization: Bearer`.
    Token(Secret),
    /// An identity token (`identitytoken`, or a credential helper's
    /// `<token>` user): an OAuth2 refresh token that Docker Desktop,
    /// `az acr login` and others keep instead of a password. Exchanged at
    /// the registry's token service for an access token before each push.
    Identity(Secret),
}

/// Credentials found for a registry, and where they came from (a path and
/// the kind of entry: shown in error messages, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub login: Login,
    pub source: String,
}

impl Credential {
    /// The username, when there is one (for messages).
    pub fn username(&self) -> Option<&str> {
        match &self.login {
            Login::Password { username, .. } => Some(username),
            Login::Token(_) | Login::Identity(_) => None,
        }
    }
}

/// The auth files consulted, in order: `REGISTRY_AUTH_FILE`, podman's
/// `${XDG_RUNTIME_DIR}/containers/auth.json`, Docker's config.
pub fn default_auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(path) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        files.push(PathBuf::from(path));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        files.push(PathBuf::from(runtime).join("containers").join("auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        Some(dir) => files.push(PathBuf::from(dir).join("config.json")),
        None => {
            if let Some(home) = dirs::home_dir() {
                files.push(home.join(".docker").join("config.json"));
            }
        }
    }
    files
}

/// Credentials for `registry` (`host[:port]`) from the default files, with
/// helpers found on `PATH`.
pub fn lookup(registry: &str) -> Result<Option<Credential>, String> {
    lookup_in(&default_auth_files(), registry, None)
}

/// Credentials for `registry` from `files` (the first file that knows the
/// registry wins); `helper_dir` finds `docker-credential-*` helpers there
/// instead of on `PATH`.
pub fn lookup_in(
    files: &[PathBuf],
    registry: &str,
    helper_dir: Option<&Path>,
) -> Result<Option<Credential>, String> {
    for file in files {
        let text = match crate::fsread::read_to_string(file, crate::fsread::Kind::CacheRecord) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(format!("Cannot read {}: {error}", file.display())),
        };
        let config: AuthFile = serde_json::from_str(&text).map_err(|error| {
            format!(
                "{} is not a valid auth file ({error}). Fix it, or log in again with `docker login` / `podman login`.",
                file.display()
            )
        })?;
        if let Some(found) = from_file(&config, file, registry, helper_dir)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

fn from_file(
    config: &AuthFile,
    file: &Path,
    registry: &str,
    helper_dir: Option<&Path>,
) -> Result<Option<Credential>, String> {
    let keys = server_keys(registry);
    if let Some(helper) = keys.iter().find_map(|key| config.cred_helpers.get(key)) {
        return run_helper(helper, &keys[0], helper_dir, file);
    }
    let entry = config.auths.iter().find_map(|(key, entry)| {
        keys.iter()
            .any(|wanted| normalize(key) == normalize(wanted))
            .then_some(entry)
    });
    if let Some(store) = &config.creds_store
        && let Some(found) = run_helper(store, &keys[0], helper_dir, file)?
    {
        return Ok(Some(found));
    }
    let Some(entry) = entry else {
        return Ok(None);
    };
    let source = format!("{} (auths)", file.display());
    if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential {
            login: Login::Token(Secret::new(token)),
            source,
        }));
    }
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential {
            login: Login::Identity(Secret::new(token)),
            source,
        }));
    }
    if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                format!(
                    "The `auth` entry for {registry} in {} is not base64 of `user:password`. Log in again with `docker login {registry}`.",
                    file.display()
                )
            })?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(format!(
                "The `auth` entry for {registry} in {} does not hold `user:password`. Log in again with `docker login {registry}`.",
                file.display()
            ));
        };
        return Ok(Some(Credential {
            login: Login::Password {
                username: username.to_owned(),
                password: Secret::new(password),
            },
            source,
        }));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(Credential {
            login: Login::Password {
                username: username.clone(),
                password: Secret::new(password.clone()),
            },
            source,
        }));
    }
    Ok(None)
}

/// The keys a registry may be filed under: `host[:port]` first (what
/// helpers are asked for), then its URL forms; Docker Hub's legacy key.
fn server_keys(registry: &str) -> Vec<String> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return vec![
            "https://index.docker.io/v1/".to_owned(),
            "docker.io".to_owned(),
            "index.docker.io".to_owned(),
            "registry-1.docker.io".to_owned(),
        ];
    }
    vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
}

/// `https://host:port/v1/` → `host:port`, as Docker compares auth keys.
fn normalize(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_ascii_lowercase()
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-NAME get` with the server on stdin; "not found" is
/// `None`, any other failure an error naming the helper.
fn run_helper(
    name: &str,
    server: &str,
    helper_dir: Option<&Path>,
    file: &Path,
) -> Result<Option<Credential>, String> {
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(format!(
            "{} names the credential helper `{name}`, which is not a helper name.",
            file.display()
        ));
    }
    let program = format!("docker-credential-{name}");
    let path = match helper_dir {
        Some(dir) => dir.join(&program),
        None => PathBuf::from(&program),
    };
    let output = helper_process::run(&path, "get", server.as_bytes(), helper_process::timeout()).map_err(|failure| {
        match failure {
            HelperFailure::Spawn(error) => format!(
                "{} asks the credential helper `{program}`, which cannot be run ({error}). Install it, or remove it from the file.",
                file.display()
            ),
            other => format!("The credential helper `{program}` {other}"),
        }
    })?;
    if !output.success {
        // Its output is never shown: a helper may print a secret anywhere.
        if output.said_not_found {
            return Ok(None);
        }
        return Err(format!(
            "The credential helper `{program}` failed ({}); its output is not shown, since it may hold a secret. Run `{program} get` yourself to see why.",
            output.status
        ));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|_| {
        format!("The credential helper `{program}` answered something that is not its JSON reply.")
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    let source = format!("{program} (from {})", file.display());
    if answer.username == "<token>" {
        return Ok(Some(Credential {
            login: Login::Identity(Secret::new(answer.secret)),
            source,
        }));
    }
    Ok(Some(Credential {
        login: Login::Password {
            username: answer.username,
            password: Secret::new(answer.secret),
        },
        source,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn password(credential: &Credential) -> (&str, &str) {
        match &credential.login {
            Login::Password { username, password } => (username, password.expose()),
            _ => panic!("not a password"),
        }
    }

    #[test]
    fn auths_entries_are_found_under_any_key_form() {
        let dir = tempfile::tempdir().unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        let file = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths": {{"https://registry.example.com:5000/v1/": {{"auth": "{encoded}"}},
                   "other.example": {{"username": "bob", "password": "pw"}},
                   "tok.example": {{"registrytoken": "abc"}},
                   "idt.example": {{"auth": "YWxpY2U6", "identitytoken": "refresh-me"}},
                   "https://index.docker.io/v1/": {{"auth": "{encoded}"}}}}}}"#
            ),
        );
        let files = [file];
        let found = lookup_in(&files, "registry.example.com:5000", None)
            .unwrap()
            .unwrap();
        assert_eq!(password(&found), ("alice", "s3cr:et"));
        assert!(found.source.contains("config.json (auths)"));
        let bob = lookup_in(&files, "other.example", None).unwrap().unwrap();
        assert_eq!(password(&bob), ("bob", "pw"));
        let token = lookup_in(&files, "tok.example", None).unwrap().unwrap();
        assert_eq!(token.login, Login::Token(Secret::new("abc")));
        // An identity token wins over the `user:` (empty password) beside it.
        let identity = lookup_in(&files, "idt.example", None).unwrap().unwrap();
        assert_eq!(identity.login, Login::Identity(Secret::new("refresh-me")));
        assert!(!format!("{identity:?}").contains("refresh-me"));
        assert!(lookup_in(&files, "docker.io", None).unwrap().is_some());
        assert!(
            lookup_in(&files, "unknown.example", None)
                .unwrap()
                .is_none()
        );
        assert!(!format!("{found:?}").contains("s3cr"), "{found:?}");
    }

    #[test]
    fn the_first_file_that_knows_the_registry_wins_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let podman = write(
            dir.path(),
            "auth.json",
            r#"{"auths": {"a.example": {"username": "podman", "password": "1"}}}"#,
        );
        let docker = write(
            dir.path(),
            "config.json",
            r#"{"auths": {"a.example": {"username": "docker", "password": "2"},
                          "b.example": {"username": "docker", "password": "3"}}}"#,
        );
        let files = [dir.path().join("missing.json"), podman, docker];
        let a = lookup_in(&files, "a.example", None).unwrap().unwrap();
        assert_eq!(password(&a).0, "podman");
        let b = lookup_in(&files, "b.example", None).unwrap().unwrap();
        assert_eq!(password(&b), ("docker", "3"));
        let broken = write(dir.path(), "broken.json", "{\"auths\": ");
        let error = lookup_in(&[broken], "a.example", None).unwrap_err();
        assert!(
            error.contains("broken.json is not a valid auth file"),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_helper_is_named_and_its_output_never_shown() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = write(
            dir.path(),
            "docker-credential-leaky",
            "#!/bin/sh\necho 'token=hunter2-secret'; echo 'hunter2-secret' >&2; exit 3\n",
        );
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = write(dir.path(), "leaky.json", r#"{"credsStore": "leaky"}"#);
        let error =
            lookup_in(std::slice::from_ref(&file), "reg.example", Some(dir.path())).unwrap_err();
        assert!(error.contains("docker-credential-leaky"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        let garbage = write(
            dir.path(),
            "docker-credential-garbage",
            "#!/bin/sh\necho 'not json hunter2'\n",
        );
        std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = write(dir.path(), "garbage.json", r#"{"credsStore": "garbage"}"#);
        let error =
            lookup_in(std::slice::from_ref(&file), "reg.example", Some(dir.path())).unwrap_err();
        assert!(
            error.contains("not its JSON reply") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn credential_helpers_are_run_with_the_server_on_stdin() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = write(
            dir.path(),
            "docker-credential-fake",
            "#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = \"reg.example:5000\" ]; then\n  printf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"helper-pw\"}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        );
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let helpers = write(
            dir.path(),
            "helpers.json",
            r#"{"credHelpers": {"reg.example:5000": "fake"}, "auths": {"reg.example:5000": {}}}"#,
        );
        let found = lookup_in(
            std::slice::from_ref(&helpers),
            "reg.example:5000",
            Some(dir.path()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(password(&found), ("helper-user", "helper-pw"));
        assert!(found.source.starts_with("docker-credential-fake"));

        let store = write(
            dir.path(),
            "store.json",
            r#"{"credsStore": "fake", "auths": {"other.example": {"username": "u", "password": "p"}}}"#,
        );
        let files = [store];
        let via_store = lookup_in(&files, "reg.example:5000", Some(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(password(&via_store).0, "helper-user");
        // The helper does not know it: the plain entry is used.
        let fallback = lookup_in(&files, "other.example", Some(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(password(&fallback), ("u", "p"));

        let missing = write(dir.path(), "missing.json", r#"{"credsStore": "absent"}"#);
        let error = lookup_in(&[missing], "x.example", Some(dir.path())).unwrap_err();
        assert!(error.contains("docker-credential-absent"), "{error}");

        // A helper's `<token>` user holds an identity token (Docker's
        // convention), used as one.
        let token_helper = write(
            dir.path(),
            "docker-credential-idt",
            "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"<token>\",\"Secret\":\"refresh-123\"}' \"$server\"\n",
        );
        std::fs::set_permissions(&token_helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let idt = write(dir.path(), "idt.json", r#"{"credsStore": "idt"}"#);
        let found = lookup_in(&[idt], "acr.example", Some(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(found.login, Login::Identity(Secret::new("refresh-123")));
        assert_eq!(found.username(), None);
    }
}
