//! The lode configs under `deploy/` parse with lode's own `Config`: every key is one the binary
//! knows (`deny_unknown_fields` names any typo), every value has the right type and unit, and
//! the sections validate. deploy/validate.sh checks the manifests around them.
//!
//! The cluster configs use keys that land with the cluster issue: `memberlist` (stripped here
//! while `Config` refuses it, and checked as soon as it exists) and `replication_factor: 3`
//! (which today's single-binary `validate()` refuses, so the other sections are validated with
//! the single binary's factor of 1).

use std::path::PathBuf;

use lode_app::Config;

/// Sections the cluster issue adds, under Loki's names.
const PENDING_CLUSTER_SECTIONS: &[&str] = &["memberlist"];

fn deploy_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
}

/// Parses a config, first as it is, then without the sections `Config` does not know yet.
fn parse(name: &str, text: &str) -> Config {
    let err = match Config::from_yaml(text) {
        Ok(cfg) => return cfg,
        Err(e) => e.to_string(),
    };
    let pending = PENDING_CLUSTER_SECTIONS
        .iter()
        .any(|k| err.contains(&format!("unknown field `{k}`")));
    assert!(pending, "{name} does not parse: {err}");
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
    let map = value.as_mapping_mut().expect("a config file is a mapping");
    for k in PENDING_CLUSTER_SECTIONS {
        map.remove(*k);
    }
    let text = serde_yaml::to_string(&value).expect("re-serializes");
    Config::from_yaml(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

fn check_cluster_config(name: &str, text: &str) {
    let mut cfg = parse(name, text);
    assert_eq!(cfg.common.replication_factor, 3, "{name}");
    assert_eq!(cfg.server.grpc_listen_port, 9095, "{name}");
    assert_eq!(cfg.storage_config.backend, "s3", "{name}");
    assert!(cfg.ingester.wal.enabled, "{name}: the ingesters' WAL is on");
    // Today's validate() accepts only the single binary; everything else must pass it.
    cfg.target = "all".into();
    cfg.common.replication_factor = 1;
    cfg.resolve();
    cfg.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn kubernetes_configmap_config_parses() {
    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&deploy_file("kubernetes/configmap.yaml")).expect("configmap.yaml is YAML");
    let text = manifest["data"]["lode.yaml"]
        .as_str()
        .expect("the ConfigMap holds data.lode.yaml");
    check_cluster_config("kubernetes/configmap.yaml", text);
}

#[test]
fn compose_cluster_config_parses() {
    check_cluster_config("config/lode-cluster.yaml", &deploy_file("config/lode-cluster.yaml"));
}

#[test]
fn image_default_config_is_a_valid_single_binary() {
    let mut cfg = parse("config/lode.yaml", &deploy_file("config/lode.yaml"));
    assert_eq!(cfg.target, "all");
    assert_eq!(
        cfg.common.path_prefix, "/data",
        "everything on the image's /data volume"
    );
    cfg.resolve();
    cfg.validate().expect("the image's default config validates");
}
