//! Validation of the builder-shaping values of `[rust]` (`toolchain`,
//! `packages`, `env` names): shared by the config checker and the build
//! plan, so neither depends on the other for it.

/// A toolchain name as rustup takes it: `1.96`, `stable`, `nightly-2026-05-01`,
/// `1.96.0-x86_64-unknown-linux-gnu`.
pub fn validate_toolchain(name: &str) -> std::result::Result<(), String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("The toolchain cannot be empty.".to_owned());
    }
    if name.len() > 64
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'))
        || name.starts_with('-')
    {
        return Err(format!(
            "`{}` is not a toolchain name: use a version (`1.96`), a channel (`stable`, `beta`, `nightly`) or a dated channel (`nightly-2026-05-01`).",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// A system package name as apt, dnf and apk take it (optionally with an
/// apt-style `=version`): no spaces, no shell characters, no leading `-`.
pub fn validate_package(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('-')
        && name.chars().all(|ch| {
            ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_' | '+' | ':' | '=' | '~')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a system package name: use names like `make`, `libssl-dev` or `protobuf-compiler`.",
            name.escape_debug()
        ))
    }
}

/// Variables Arca sets for every build; `[rust] env` may not replace them.
pub const RESERVED_ENV: [&str; 5] = [
    "HOME",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_TERM_COLOR",
    "RUSTUP_HOME",
];

/// An environment variable name for `[rust] env`.
pub fn validate_env_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if !well_formed {
        return Err(format!(
            "`{}` is not an environment variable name: use letters, digits and `_`, not starting with a digit.",
            name.escape_debug()
        ));
    }
    if RESERVED_ENV.contains(&name) {
        return Err(format!(
            "`{name}` is set by Arca for every build and cannot be replaced here."
        ));
    }
    Ok(())
}
