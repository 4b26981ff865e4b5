//! The lode configs under `deploy/` parse with lode's own `Config`: every key is one the binary
//! knows (`deny_unknown_fields` names any typo), every value has the right type and unit, and
//! the sections validate for every role that runs them. deploy/validate.sh checks the
//! manifests around them.

use std::path::PathBuf;

use lode_app::Config;

fn deploy_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
}

fn parse(name: &str, text: &str) -> Config {
    Config::from_yaml(text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// A cluster config: replication factor 3, gRPC between roles, S3, the WAL on, and valid for
/// each role's process.
fn check_cluster_config(name: &str, text: &str) {
    let cfg = parse(name, text);
    assert_eq!(cfg.common.replication_factor, 3, "{name}");
    assert_eq!(cfg.server.grpc_listen_port, 9095, "{name}");
    assert_eq!(cfg.storage_config.backend, "s3", "{name}");
    assert!(cfg.ingester.wal.enabled, "{name}: the ingesters' WAL is on");
    assert!(!cfg.memberlist.join_members.is_empty(), "{name}: gossip seeds");
    for role in ["distributor", "ingester", "querier"] {
        let mut cfg = cfg.clone();
        cfg.target = role.into();
        cfg.resolve();
        cfg.validate().unwrap_or_else(|e| panic!("{name} as {role}: {e}"));
    }
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

/// The arguments of the (only) container of a Kubernetes workload manifest.
fn container_args(rel: &str) -> Vec<String> {
    let manifest: serde_yaml::Value = serde_yaml::from_str(&deploy_file(rel)).expect("a workload manifest is YAML");
    let containers = manifest["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{rel}: no containers"));
    assert_eq!(containers.len(), 1, "{rel}");
    containers[0]["args"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{rel}: no args"))
        .iter()
        .map(|a| a.as_str().expect("args are strings").to_string())
        .collect()
}

/// Each role's pod, as Kubernetes starts it: the ConfigMap's lode.yaml at the mounted path,
/// the manifest's own arguments (`$(POD_NAME)` filled in as the kubelet does), and the
/// environment the lode-s3 Secret gives, expanded by -config.expand-env=true. The config
/// must parse, take every flag, and validate for that role.
#[test]
fn kubernetes_pods_config_expands_and_validates_per_role() {
    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&deploy_file("kubernetes/configmap.yaml")).expect("configmap.yaml is YAML");
    let text = manifest["data"]["lode.yaml"]
        .as_str()
        .expect("the ConfigMap holds data.lode.yaml");
    assert!(
        text.contains("${AWS_SECRET_ACCESS_KEY}"),
        "the ConfigMap takes its credentials from the environment"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lode.yaml");
    std::fs::write(&path, text).unwrap();
    let env = |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some("AKIAIOSFODNN7EXAMPLE".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLEKEY".to_string()),
        _ => None,
    };
    for (rel, role) in [
        ("kubernetes/distributor.yaml", "distributor"),
        ("kubernetes/ingester.yaml", "ingester"),
        ("kubernetes/querier.yaml", "querier"),
    ] {
        let pod = format!("lode-{role}-0");
        let mut flags: Vec<(String, String)> = container_args(rel)
            .iter()
            .map(|a| {
                let (k, v) = a
                    .trim_start_matches('-')
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{rel}: {a} is not -flag=value"));
                (k.to_string(), v.replace("$(POD_NAME)", &pod))
            })
            .collect();
        let file = flags
            .iter_mut()
            .find(|(k, _)| k == lode_app::FILE_FLAG)
            .unwrap_or_else(|| panic!("{rel}: no -config.file"));
        assert_eq!(file.1, "/etc/lode/lode.yaml", "{rel}: where the ConfigMap is mounted");
        file.1 = path.to_string_lossy().into_owned();
        assert!(
            flags.iter().any(|(k, v)| k == lode_app::EXPAND_ENV_FLAG && v == "true"),
            "{rel}: the credentials need -config.expand-env=true"
        );
        let mut cfg = Config::from_file_flags(&flags, env).unwrap_or_else(|e| panic!("{rel}: {e}"));
        for (k, v) in flags
            .iter()
            .filter(|(k, _)| k != lode_app::FILE_FLAG && k != lode_app::EXPAND_ENV_FLAG)
        {
            assert!(
                cfg.apply_flag(k, v).unwrap_or_else(|e| panic!("{rel}: {e}")),
                "{rel}: unknown flag -{k}"
            );
        }
        assert_eq!(cfg.target, role, "{rel}");
        assert_eq!(cfg.common.instance_id, pod, "{rel}");
        assert_eq!(cfg.storage_config.s3.access_key_id, "AKIAIOSFODNN7EXAMPLE", "{rel}");
        assert_eq!(
            cfg.storage_config.s3.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLEKEY",
            "{rel}"
        );
        assert_eq!(cfg.replication_factor(), 3, "{rel}");
        cfg.resolve();
        cfg.validate().unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
}
