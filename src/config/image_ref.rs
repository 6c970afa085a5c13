//! Container image references (`registry/path:tag@digest`), parsed by the
//! grammar of Docker's distribution/reference package, with a reason a user
//! can act on when a reference is malformed.
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ host [ ":" port ] "/" ] path-component ( "/" path-component )*
//! component  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [\w][\w.-]{0,127}
//! digest     := algorithm ":" hex   (sha256: 64 lowercase hex digits)
//! ```
//!
//! A first component is a registry host only when it contains `.` or `:` or
//! is `localhost` (so `nvidia/cuda` is a Docker Hub path), as Docker decides.

use std::fmt;

/// Longest name (registry and path) the registry accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag the registry accepts.
pub const TAG_LENGTH_MAX: usize = 128;
/// Longer references are refused before any other check: name, tag and the
/// longest digest together stay well below this.
const REFERENCE_LENGTH_MAX: usize = 1024;

/// A well-formed image reference, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// Registry host with optional port, e.g. `localhost:5000`; `None` for
    /// Docker Hub short names such as `nvidia/cuda`.
    pub registry: Option<String>,
    /// The path below the registry, e.g. `nvidia/cuda`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

impl ImageReference {
    /// `registry/repository` (or just the repository for Docker Hub names).
    pub fn name(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses `reference`, or says what is wrong with it (one sentence, no
/// trailing period, naming the offending part).
pub fn parse(reference: &str) -> Result<ImageReference, String> {
    if reference.trim().is_empty() {
        return Err("the image reference is empty".to_owned());
    }
    if reference.len() > REFERENCE_LENGTH_MAX {
        return Err(format!(
            "the reference is {} characters long; image names may be at most {NAME_TOTAL_LENGTH_MAX} characters and tags {TAG_LENGTH_MAX}",
            reference.len()
        ));
    }
    if reference.chars().any(char::is_whitespace) {
        return Err("image references cannot contain whitespace".to_owned());
    }
    if let Some(bad) = reference.chars().find(|ch| ch.is_control()) {
        return Err(format!(
            "image references cannot contain control characters (found U+{:04X})",
            u32::from(bad)
        ));
    }
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((_, digest)) if digest.contains('@') => {
            return Err("an image reference can hold only one `@digest`".to_owned());
        }
        Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
        None => (reference, None),
    };
    let (name, tag) = split_tag(name_and_tag);
    if name.is_empty() {
        return Err("the image name is missing before the tag or digest".to_owned());
    }
    let (registry, repository) = split_registry(name);
    if let Some(registry) = registry {
        check_registry(registry)?;
    }
    check_repository(repository)?;
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!(
            "the image name is {} characters long; registries accept at most {NAME_TOTAL_LENGTH_MAX}",
            name.len()
        ));
    }
    if registry.is_none() && is_full_hex_identifier(repository) {
        return Err(
            "a 64-character hexadecimal string is an image ID, not a repository name".to_owned(),
        );
    }
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    Ok(ImageReference {
        registry: registry.map(str::to_owned),
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    })
}

/// Why `reference` is not a valid image reference, or `None` when it is.
pub fn problem(reference: &str) -> Option<String> {
    parse(reference).err()
}

/// Splits `name[:tag]`: the tag follows the last `:` after the last `/`
/// (a `:` before a `/` is a registry port).
fn split_tag(name_and_tag: &str) -> (&str, Option<&str>) {
    let last_slash = name_and_tag.rfind('/');
    match name_and_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
        }
        _ => (name_and_tag, None),
    }
}

/// Splits off the registry host: the first component, when it looks like a
/// host (`.`, `:` or `localhost`).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err(format!(
                "registry host `{registry}` opens `[` for an IPv6 address but never closes it"
            ));
        };
        if address.is_empty()
            || !address
                .chars()
                .all(|ch| ch.is_ascii_hexdigit() || ch == ':' || ch == '.')
        {
            return Err(format!(
                "registry host `{registry}` is not a valid bracketed IPv6 address"
            ));
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => {
                    return Err(format!(
                        "registry host `{registry}` has unexpected text after the IPv6 address"
                    ));
                }
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        check_host(host, registry)?;
    }
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|ch| ch.is_ascii_digit()))
    {
        return Err(format!(
            "registry `{registry}` has an invalid port `{port}`: a port is a number"
        ));
    }
    Ok(())
}

fn check_host(host: &str, registry: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err(format!("registry `{registry}` has an empty host name"));
    }
    for label in host.split('.') {
        let valid = !label.is_empty()
            && label
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(format!(
                "registry host `{host}` is not a valid host name: each dot-separated part must be letters, digits and inner hyphens"
            ));
        }
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(format!(
            "repository names must be lowercase: write `{}`",
            repository.to_ascii_lowercase()
        ));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(format!(
                "`{repository}` has an empty path component (a leading, trailing or doubled `/`)"
            ));
        }
        check_path_component(component)?;
    }
    Ok(())
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn check_path_component(component: &str) -> Result<(), String> {
    let is_alnum = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let bytes = component.as_bytes();
    if let Some(bad) = component.chars().find(|&ch| {
        !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'))
    }) {
        return Err(format!(
            "`{component}` contains `{bad}`: repository path components may hold only lowercase letters, digits and the separators `.`, `_`, `__`, `-`"
        ));
    }
    if !bytes.first().copied().is_some_and(is_alnum) || !bytes.last().copied().is_some_and(is_alnum)
    {
        return Err(format!(
            "`{component}` must start and end with a lowercase letter or digit"
        ));
    }
    let mut index = 0;
    while index < bytes.len() {
        if is_alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !is_alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return Err(format!(
                "`{component}` has the separator `{separator}`: between letters and digits use one `.`, one `_`, `__`, or dashes"
            ));
        }
    }
    Ok(())
}

fn is_full_hex_identifier(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let is_word = |ch: char| ch.is_ascii_alphanumeric() || ch == '_';
    let Some(first) = tag.chars().next() else {
        return Err("the tag after `:` is empty: remove the `:` or write a tag".to_owned());
    };
    if !is_word(first) {
        return Err(format!(
            "tag `{tag}` must start with a letter, digit or `_`"
        ));
    }
    if let Some(bad) = tag
        .chars()
        .find(|&ch| !(is_word(ch) || ch == '.' || ch == '-'))
    {
        return Err(format!(
            "tag `{tag}` contains `{bad}`: tags may hold only letters, digits, `_`, `.` and `-`"
        ));
    }
    if tag.len() > TAG_LENGTH_MAX {
        return Err(format!(
            "the tag is {} characters long; tags may be at most {TAG_LENGTH_MAX}",
            tag.len()
        ));
    }
    Ok(())
}

/// `algorithm:hex`; sha256 and sha512 must have their exact lowercase length,
/// other algorithms at least 32 hex digits.
fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "digest `{digest}` must have the form `sha256:<64 hex digits>`"
        ));
    };
    let algorithm_valid = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|ch| ch.is_ascii_alphabetic())
                && chars.all(|ch| ch.is_ascii_alphanumeric())
        });
    if !algorithm_valid {
        return Err(format!(
            "digest algorithm `{algorithm}` is not valid: use `sha256`"
        ));
    }
    let exact = match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    };
    let lowercase_hex = hex
        .bytes()
        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    match exact {
        Some(length) if hex.len() != length || !lowercase_hex => Err(format!(
            "a {algorithm} digest is exactly {length} lowercase hex digits; `{hex}` is not"
        )),
        Some(_) => Ok(()),
        None if hex.len() < 32 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) => Err(
            format!("digest `{digest}` needs at least 32 hex digits after `{algorithm}:`"),
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn valid_references_split_into_parts() {
        let digest = format!("sha256:{HEX}");
        /// reference, registry, repository, tag, digest
        type Case<'a> = (
            String,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            ("ubuntu".into(), None, "ubuntu", None, None),
            ("ubuntu:24.04".into(), None, "ubuntu", Some("24.04"), None),
            (
                "nvidia/cuda:12.8.1-runtime-ubuntu24.04".into(),
                None,
                "nvidia/cuda",
                Some("12.8.1-runtime-ubuntu24.04"),
                None,
            ),
            (
                "localhost:5000/a/b:c".into(),
                Some("localhost:5000"),
                "a/b",
                Some("c"),
                None,
            ),
            ("localhost/a".into(), Some("localhost"), "a", None, None),
            (
                format!("registry.example.com/org/img@{digest}"),
                Some("registry.example.com"),
                "org/img",
                None,
                Some(digest.as_str()),
            ),
            (
                format!("a/b:c@{digest}"),
                None,
                "a/b",
                Some("c"),
                Some(digest.as_str()),
            ),
            (
                "gcr.io/distroless/cc-debian12".into(),
                Some("gcr.io"),
                "distroless/cc-debian12",
                None,
                None,
            ),
            (
                "127.0.0.1:5000/x__y.z--w_v".into(),
                Some("127.0.0.1:5000"),
                "x__y.z--w_v",
                None,
                None,
            ),
            (
                "[::1]:5000/img:_t".into(),
                Some("[::1]:5000"),
                "img",
                Some("_t"),
                None,
            ),
            ("img:A_b.C-1".into(), None, "img", Some("A_b.C-1"), None),
        ];
        for (reference, registry, repository, tag, digest) in cases {
            let parsed = parse(&reference).unwrap_or_else(|reason| panic!("{reference}: {reason}"));
            assert_eq!(parsed.registry.as_deref(), registry, "{reference}");
            assert_eq!(parsed.repository, repository, "{reference}");
            assert_eq!(parsed.tag.as_deref(), tag, "{reference}");
            assert_eq!(parsed.digest.as_deref(), digest, "{reference}");
            assert_eq!(parsed.to_string(), reference);
        }
    }

    #[test]
    fn invalid_references_say_what_is_wrong() {
        let long_tag = format!("img:{}", "t".repeat(129));
        let long_name = format!("a/{}", "b".repeat(254));
        let too_long = "a".repeat(2000);
        let cases: Vec<(&str, &str)> = vec![
            (
                "Ubuntu",
                "repository names must be lowercase: write `ubuntu`",
            ),
            ("ubuntu:", "the tag after `:` is empty"),
            (":tag", "the image name is missing"),
            ("a//b", "empty path component"),
            ("a/", "empty path component"),
            ("a b", "cannot contain whitespace"),
            ("ubuntu ", "cannot contain whitespace"),
            ("", "the image reference is empty"),
            (&long_tag, "tags may be at most 128"),
            ("img@sha256:abc", "exactly 64 lowercase hex digits"),
            (
                "img@sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
                "exactly 64 lowercase hex",
            ),
            ("img@md5", "must have the form `sha256:"),
            ("img@x:abcd", "at least 32 hex digits"),
            (
                "img@1x:0123456789abcdef0123456789abcdef",
                "digest algorithm `1x`",
            ),
            ("img@a@b", "only one `@digest`"),
            ("-a", "must start and end with a lowercase letter or digit"),
            ("a-", "must start and end with a lowercase letter or digit"),
            ("a..b", "has the separator `..`"),
            ("a___b", "has the separator `___`"),
            ("a/b$c", "contains `$`"),
            ("img:-x", "must start with a letter, digit or `_`"),
            ("img:a+b", "contains `+`"),
            ("localhost:port/a", "invalid port `port`"),
            ("-bad.host/a", "not a valid host name"),
            ("[::1/a", "never closes"),
            (HEX, "image ID"),
            (&long_name, "at most 255"),
            ("a\u{7}", "control characters"),
            (&too_long, "may be at most 255 characters and tags 128"),
        ];
        for (reference, expected) in cases {
            let reason = parse(reference).expect_err(reference);
            assert!(
                reason.contains(expected),
                "{reference:?}: `{reason}` should contain `{expected}`"
            );
            assert_eq!(problem(reference), Some(reason));
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let tag = "t".repeat(TAG_LENGTH_MAX);
        assert_eq!(
            parse(&format!("img:{tag}")).unwrap().tag.as_deref(),
            Some(tag.as_str())
        );
        let name = format!("a/{}", "b".repeat(NAME_TOTAL_LENGTH_MAX - 2));
        assert_eq!(parse(&name).unwrap().repository, name);
    }

    #[test]
    fn a_first_component_is_a_host_only_with_a_dot_a_colon_or_localhost() {
        assert_eq!(parse("nvidia/cuda").unwrap().registry, None);
        assert_eq!(
            parse("docker.io/nvidia/cuda").unwrap().registry.as_deref(),
            Some("docker.io")
        );
        assert_eq!(
            parse("myhost:80/x").unwrap().registry.as_deref(),
            Some("myhost:80")
        );
        assert_eq!(parse("nvidia/cuda").unwrap().name(), "nvidia/cuda");
    }
}
