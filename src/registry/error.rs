//! Why talking to a registry failed: [`RegistryError`], sorted so messages
//! can say what to do, and [`classify_request`], which sorts a failed HTTP
//! request into it. Below both the registry seam (`client`) and
//! the token service (`token`), which each report with it.

/// Why talking to the registry failed, sorted so messages can say what to do.
#[derive(Debug)]
pub enum RegistryError {
    /// Nothing answered (connection refused, DNS, reset mid-transfer).
    Unreachable(String),
    /// TLS failed (untrusted certificate, wrong name, plain HTTP server).
    Tls(String),
    /// 401/403: credentials missing, wrong, or without push rights.
    Unauthorized(String),
    /// The registry refused what was sent (its answer).
    Refused(String),
    /// The registry's answer broke a bound or did not verify (a manifest
    /// over the size limit, bytes that do not match their digest): it is
    /// not to be trusted, and nothing of it was kept.
    Untrusted(String),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::Unreachable(text) => write!(formatter, "unreachable: {text}"),
            RegistryError::Tls(text) => write!(formatter, "TLS failed: {text}"),
            RegistryError::Unauthorized(text) => write!(formatter, "not authorized: {text}"),
            RegistryError::Refused(text) => write!(formatter, "refused: {text}"),
            RegistryError::Untrusted(text) => write!(formatter, "untrustworthy answer: {text}"),
        }
    }
}

/// A failed HTTP request as a [`RegistryError`]: a 401/403 answer as
/// `Unauthorized`, another status as `Refused`, redirects Arca's policy
/// refused as `Untrusted`, and without an answer the causes (without URLs)
/// as `Tls` or `Unreachable`.
pub(super) fn classify_request(error: &reqwest::Error) -> RegistryError {
    if let Some(status) = error.status() {
        let text = format!("HTTP {status}");
        return if status.as_u16() == 401 || status.as_u16() == 403 {
            RegistryError::Unauthorized(text)
        } else {
            RegistryError::Refused(text)
        };
    }
    // The causes, outermost first, without URLs (upload URLs carry state
    // tokens and say nothing to the user).
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(inner) = source {
        parts.push(inner.to_string());
        source = inner.source();
    }
    if parts.is_empty() {
        parts.push(strip_urls(&error.to_string()));
    }
    let text = parts.join(": ");
    if error.is_redirect() {
        // A redirect loop or one to plain HTTP: not a registry to trust
        // (nor to hand to the engine instead).
        return RegistryError::Untrusted(format!("its redirects were refused: {text}"));
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalid peer")
        || lower.contains("corrupt message")
    {
        RegistryError::Tls(text)
    } else {
        RegistryError::Unreachable(text)
    }
}

/// `text` without `(http…)` URL parts.
fn strip_urls(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("(http") {
        out.push_str(rest[..start].trim_end());
        match rest[start..].find(')') {
            Some(end) => rest = &rest[start + end + 1..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}
