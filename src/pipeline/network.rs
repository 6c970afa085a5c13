//! The host's network setup, carried into build containers: the host's CA
//! bundle and its proxy variables.
//!
//! Many networks (corporate ones, these development machines) pass HTTPS
//! through a TLS-intercepting proxy whose CA only the host trusts. So the
//! host bundle is mounted **read-only** into every build container (shipped
//! in the source archive for a remote engine, copied into the builder
//! recipe's context) and named to cargo, curl, git and OpenSSL
//! ([`ca_env`]). `HTTP(S)_PROXY`/`NO_PROXY`/`ALL_PROXY` (both cases) pass
//! through as the host has them unless `[rust] proxy = false`: at run time
//! as container environment, for the recipe as build arguments (which the
//! classic builder keeps out of the image's config and history). Nothing
//! else of the host environment, and no credential file, goes anywhere.

use std::path::{Path, PathBuf};

/// Where the host CA bundle appears in build containers.
pub const CONTAINER_CA_PATH: &str = "/work/host-ca.crt";
/// Where the builder recipe keeps its copy of the host CA bundle.
pub const RECIPE_CA_PATH: &str = "/opt/arca/host-ca.crt";
/// The name of that copy in the recipe's build context.
pub const RECIPE_CA_CONTEXT_NAME: &str = "host-ca.crt";

/// The proxy variables passed through, in both cases.
const PROXY_VARIABLES: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// Well-known CA bundle locations (Debian/Ubuntu, Fedora/RHEL, openSUSE,
/// Alpine/macOS), after the ones the host names itself.
const BUNDLE_CANDIDATES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The host's CA bundle: `CARGO_HTTP_CAINFO` or `SSL_CERT_FILE` when set,
/// else the first well-known bundle that exists; symlinks resolved (a bind
/// mount needs the real file). `None` when the host has none.
pub fn host_ca_bundle() -> Option<PathBuf> {
    let named = ["CARGO_HTTP_CAINFO", "SSL_CERT_FILE"]
        .into_iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from);
    named
        .chain(BUNDLE_CANDIDATES.iter().map(PathBuf::from))
        .find_map(|path| usable_bundle(&path))
}

fn usable_bundle(path: &Path) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    let metadata = std::fs::metadata(&real).ok()?;
    (metadata.is_file() && metadata.len() > 0).then_some(real)
}

/// The variables that point cargo, curl, git and OpenSSL at a CA bundle.
pub fn ca_env(bundle_path: &str) -> Vec<(String, String)> {
    [
        "CARGO_HTTP_CAINFO",
        "SSL_CERT_FILE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), bundle_path.to_owned()))
    .collect()
}

/// The host's proxy variables that are set (values as the host has them),
/// or nothing when `enabled` is false.
pub fn proxy_env(enabled: bool) -> Vec<(String, String)> {
    proxy_env_from(enabled, |name| std::env::var(name).ok())
}

fn proxy_env_from(enabled: bool, lookup: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    if !enabled {
        return Vec::new();
    }
    PROXY_VARIABLES
        .into_iter()
        .filter_map(|name| {
            lookup(name)
                .filter(|value| !value.is_empty())
                .map(|value| (name.to_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_pass_in_both_cases_unless_turned_off() {
        let host = |name: &str| match name {
            "HTTPS_PROXY" => Some("http://proxy:3128".to_owned()),
            "no_proxy" => Some("localhost,.internal".to_owned()),
            "http_proxy" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            proxy_env_from(true, host),
            vec![
                ("HTTPS_PROXY".to_owned(), "http://proxy:3128".to_owned()),
                ("no_proxy".to_owned(), "localhost,.internal".to_owned()),
            ]
        );
        assert!(proxy_env_from(false, host).is_empty());
    }

    #[test]
    fn the_bundle_is_named_to_cargo_curl_git_and_openssl() {
        let env = ca_env(CONTAINER_CA_PATH);
        let names: Vec<_> = env.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "CARGO_HTTP_CAINFO",
                "SSL_CERT_FILE",
                "CURL_CA_BUNDLE",
                "GIT_SSL_CAINFO"
            ]
        );
        assert!(env.iter().all(|(_, value)| value == CONTAINER_CA_PATH));
    }

    #[test]
    fn a_symlinked_bundle_resolves_to_the_real_file_and_empty_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.pem");
        std::fs::write(&real, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(usable_bundle(&link), Some(real.canonicalize().unwrap()));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(usable_bundle(&empty), None);
        assert_eq!(usable_bundle(dir.path()), None);
    }
}
