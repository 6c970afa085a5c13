//! The runtime image's config, derived from the base image's config the
//! way `FROM base` + `COPY` + `LABEL` + `ENTRYPOINT` would: the base's Env,
//! User, WorkingDir, ExposedPorts, Volumes, StopSignal, labels (and
//! Docker's Healthcheck and Shell) kept; Entrypoint set and the inherited
//! Cmd cleared; the `io.khoek.arca.*` labels added; the new layers appended
//! to `rootfs.diff_ids` and `history`.
//!
//! Serialized canonically (object keys sorted), so equal inputs give equal
//! bytes and equal digests.

use std::collections::HashMap;

use anyhow::{Context, Result};
use oci_spec::image::{Config, HistoryBuilder, ImageConfiguration};
use serde_json::Value;

use crate::blobs::Digest;

/// Docker keys of the container config that `oci-spec` does not model and
/// a derived image inherits.
const DOCKER_ONLY_KEYS: &[&str] = &["Healthcheck", "Shell"];

/// A layer added on top of the base.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub diff_id: Digest,
    /// The history line (`arca: COPY hello /usr/local/bin/hello`).
    pub created_by: String,
}

/// What the runtime image adds to its base.
#[derive(Debug, Clone)]
pub struct Derivation<'a> {
    pub labels: &'a [(String, String)],
    pub entrypoint: Vec<String>,
    /// RFC 3339 creation time of the image.
    pub created: String,
    pub layers: &'a [NewLayer],
}

/// The base config's layer diff ids, in order.
pub fn diff_ids(config: &[u8]) -> Result<Vec<Digest>> {
    let parsed = ImageConfiguration::from_reader(config)
        .context("The base image's config is not a valid image config")?;
    parsed
        .rootfs()
        .diff_ids()
        .iter()
        .map(|id| Digest::parse(id))
        .collect()
}

/// The platform a config names, `os/architecture[/variant]` as written
/// (`unknown/unknown` when it names none or is not JSON).
pub fn platform_name(config: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
    };
    let mut name = format!("{}/{}", field("os"), field("architecture"));
    if let Some(variant) = value.get("variant").and_then(|v| v.as_str()) {
        name.push('/');
        name.push_str(variant);
    }
    name.escape_debug().to_string()
}

/// The runtime image's config bytes.
pub fn derive(base: &[u8], derivation: &Derivation<'_>) -> Result<Vec<u8>> {
    let raw: Value =
        serde_json::from_slice(base).context("The base image's config is not valid JSON")?;
    let mut config = ImageConfiguration::from_reader(base)
        .context("The base image's config is not a valid image config")?;
    let base_layers = config.rootfs().diff_ids().len();

    let mut runtime = config.config().clone().unwrap_or_else(Config::default);
    runtime.set_entrypoint(Some(derivation.entrypoint.clone()));
    runtime.set_cmd(None);
    let mut labels: HashMap<String, String> = runtime.labels().clone().unwrap_or_default();
    for (key, value) in derivation.labels {
        labels.insert(key.clone(), value.clone());
    }
    runtime.set_labels(Some(labels));
    config.set_config(Some(runtime));

    let mut history = config.history().clone().unwrap_or_default();
    if history.is_empty() && base_layers > 0 {
        // A base without history (e.g. `docker import`): one line per layer
        // so the history still matches the layers.
        for _ in 0..base_layers {
            history.push(
                HistoryBuilder::default()
                    .created_by("base image layer")
                    .build()
                    .context("history entry")?,
            );
        }
    }
    for layer in derivation.layers {
        config
            .rootfs_mut()
            .diff_ids_mut()
            .push(layer.diff_id.to_string());
        history.push(
            HistoryBuilder::default()
                .created(derivation.created.clone())
                .created_by(layer.created_by.clone())
                .build()
                .context("history entry")?,
        );
    }
    history.push(
        HistoryBuilder::default()
            .created(derivation.created.clone())
            .created_by(format!(
                "arca: LABEL io.khoek.arca.* ENTRYPOINT {}",
                serde_json::to_string(&derivation.entrypoint)?
            ))
            .empty_layer(true)
            .build()
            .context("history entry")?,
    );
    config.set_history(Some(history));
    config.set_created(Some(derivation.created.clone()));

    let mut value = serde_json::to_value(&config).context("Failed to encode the image config")?;
    if let (Some(from), Some(Value::Object(to))) = (
        raw.get("config").and_then(Value::as_object),
        value.get_mut("config"),
    ) {
        for key in DOCKER_ONLY_KEYS {
            if let Some(kept) = from.get(*key).filter(|kept| !kept.is_null()) {
                to.insert((*key).to_owned(), kept.clone());
            }
        }
    }
    // serde_json's map is ordered by key: canonical bytes.
    serde_json::to_vec(&value).context("Failed to encode the image config")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "container": "abc", "docker_version": "20.10",
        "config": {
            "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "User": "1000:1000",
            "WorkingDir": "/srv", "ExposedPorts": {"8080/tcp": {}},
            "Cmd": ["/bin/sh"], "Labels": {"vendor": "me", "io.khoek.arca.artifact-id": "old"},
            "Healthcheck": {"Test": ["CMD", "true"]}, "OnBuild": ["RUN x"]
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs"}]
    }"#;

    fn derived(labels: &[(String, String)]) -> Value {
        let layers = [NewLayer {
            diff_id: Digest::parse(&"2".repeat(64)).unwrap(),
            created_by: "arca: COPY hello /usr/local/bin/hello".into(),
        }];
        let bytes = derive(
            BASE.as_bytes(),
            &Derivation {
                labels,
                entrypoint: vec!["/usr/local/bin/hello".into()],
                created: "2026-12-01T00:00:00Z".into(),
                layers: &layers,
            },
        )
        .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn the_base_settings_are_kept_and_the_entrypoint_and_labels_set() {
        let labels = vec![(
            "io.khoek.arca.artifact-id".to_owned(),
            "ab12cd34".to_owned(),
        )];
        let config = derived(&labels);
        let runtime = &config["config"];
        assert_eq!(runtime["Env"][1], "LANG=C.UTF-8");
        assert_eq!(runtime["User"], "1000:1000");
        assert_eq!(runtime["WorkingDir"], "/srv");
        assert!(runtime["ExposedPorts"]["8080/tcp"].is_object());
        assert_eq!(runtime["Entrypoint"][0], "/usr/local/bin/hello");
        assert!(runtime.get("Cmd").is_none(), "inherited Cmd cleared");
        assert_eq!(runtime["Labels"]["vendor"], "me");
        assert_eq!(runtime["Labels"]["io.khoek.arca.artifact-id"], "ab12cd34");
        assert_eq!(runtime["Healthcheck"]["Test"][1], "true");
        assert!(
            runtime.get("OnBuild").is_none(),
            "triggers are not inherited"
        );
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        let history = config["history"].as_array().unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[2]["empty_layer"], true);
        assert_eq!(config["created"], "2026-12-01T00:00:00Z");
        assert!(config.get("container").is_none());
    }

    #[test]
    fn equal_inputs_give_equal_bytes() {
        let labels: Vec<(String, String)> = (0..20)
            .map(|index| (format!("io.khoek.arca.k{index}"), index.to_string()))
            .collect();
        assert_eq!(derived(&labels).to_string(), derived(&labels).to_string());
    }
}
