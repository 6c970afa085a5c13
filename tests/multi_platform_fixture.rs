//! The two-platform test base (issue 19) is what the multi-platform tests
//! take it for: `.ci/fixtures.sh`'s OCI layout, pushed whole into a real
//! loopback `docker-registry` by `Registry::put_multi_platform_base`, is
//! served as an image index of exactly linux/amd64 and linux/arm64 (the
//! layout's own index, digest kept), and each platform's image says its
//! architecture in its config, with one gzip layer and a `PATH`.
//!
//! Needs `.ci/registry-setup.sh`, `.ci/cross-setup.sh` and `.ci/fixtures.sh`
//! (no engine); without them the test prints a note and passes, unless
//! `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/registry.rs"]
mod registry;

use registry::{
    MULTI_PLATFORM_BASE_LAYOUT, MULTI_PLATFORM_BASE_REF, Registry, multi_platform_base_present,
    tools_present,
};

/// `skopeo ARGS`' stdout as JSON (the command must succeed).
fn skopeo_json(args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("skopeo prints JSON")
}

#[test]
fn the_multi_platform_base_is_served_as_an_index_of_amd64_and_arm64() {
    if !tools_present() || !multi_platform_base_present() {
        return;
    }
    let registry = Registry::start(None, None);
    let base = registry.put_multi_platform_base("arca-test/multi:1");
    assert_eq!(base, format!("{}/arca-test/multi:1", registry.address));
    let remote = format!("docker://{base}");

    let index = skopeo_json(&["inspect", "--raw", "--tls-verify=false", &remote]);
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index:#}"
    );
    let manifests = index["manifests"].as_array().expect("manifests");
    let platforms: Vec<String> = manifests
        .iter()
        .map(|entry| {
            assert_eq!(
                entry["mediaType"], "application/vnd.oci.image.manifest.v1+json",
                "{entry:#}"
            );
            let platform = &entry["platform"];
            assert!(platform.get("variant").is_none(), "{entry:#}");
            format!(
                "{}/{}",
                platform["os"].as_str().expect("os"),
                platform["architecture"].as_str().expect("architecture")
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{index:#}");

    // The registry holds the layout's own index, byte for byte.
    let layout = format!("oci:{MULTI_PLATFORM_BASE_LAYOUT}:{MULTI_PLATFORM_BASE_REF}");
    assert_eq!(index, skopeo_json(&["inspect", "--raw", &layout]));

    // Each platform's image, chosen from the index by skopeo, is complete in
    // the registry and says its platform in its config.
    for (architecture, entry) in ["amd64", "arm64"].into_iter().zip(manifests) {
        let image = skopeo_json(&[
            "inspect",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            architecture,
            &remote,
        ]);
        assert_eq!(image["Architecture"], architecture, "{image:#}");
        assert_eq!(image["Os"], "linux", "{image:#}");
        let env = image["Env"].as_array().expect("Env");
        assert!(
            env.iter()
                .any(|var| var.as_str().is_some_and(|var| var.starts_with("PATH=/"))),
            "{image:#}"
        );
        let manifest = skopeo_json(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!(
                "docker://{}/arca-test/multi@{}",
                registry.address,
                entry["digest"].as_str().expect("digest")
            ),
        ]);
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "{manifest:#}");
        assert_eq!(
            layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{manifest:#}"
        );
        let config = skopeo_json(&[
            "inspect",
            "--config",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            architecture,
            &remote,
        ]);
        assert_eq!(config["architecture"], architecture, "{config:#}");
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(1)
        );
        assert!(
            registry
                .blob_data(layers[0]["digest"].as_str().expect("digest"))
                .is_file(),
            "{architecture}'s layer is not in the registry's storage"
        );
    }
}
