"""Cross-file checks of deploy/ that no schema expresses, run by validate.sh after the schema
validators. Each check names the file and the problem; the script exits 1 if any fails.

- Dockerfile: the builder's Rust matches rust-toolchain.toml; non-root, /data, ports, entrypoint.
- The lode configs (the ConfigMap's embedded file and config/*.yaml): valid YAML with only the
  top-level sections docs/lode.example.yaml has; the cluster
  ones have grpc_listen_port 9095, replication_factor 3, S3 storage and gossip seeds that name
  a real Service (Kubernetes) or compose service. (The Rust test
  crates/lode-app/tests/deploy_config.rs parses and validates them with lode's own Config, for
  every role, the ConfigMap's after expanding its environment references.)
- Kubernetes: selectors match pod labels, every -target is the workload's role, named ports,
  ConfigMap, Secret and serviceName references resolve, Services and PDBs select pods,
  replica counts and the ingesters' grace period, kustomization lists every manifest.
- Compose: lode services run a role, mounted files exist, nginx's upstreams and Grafana's
  data source point at services of the same file.
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"

errors: list[str] = []


def fail(where, msg):
    errors.append(f"{Path(where).relative_to(ROOT) if Path(where).is_absolute() else where}: {msg}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------- Dockerfile


def check_dockerfile():
    path = DEPLOY / "Dockerfile"
    text = path.read_text()
    tc = re.search(r'^channel\s*=\s*"([^"]+)"', (ROOT / "rust-toolchain.toml").read_text(), re.M)
    toolchain = tc.group(1) if tc else None
    m = re.search(r"^ARG RUST_VERSION=(\S+)$", text, re.M)
    if not m or m.group(1) != toolchain:
        fail(path, f"ARG RUST_VERSION must equal rust-toolchain.toml's channel {toolchain!r}")
    if len(re.findall(r"^FROM ", text, re.M)) < 2:
        fail(path, "expected a multi-stage build (builder and runtime)")
    for needle, what in [
        ("cargo build --release --locked -p lode", "builds the lode package in release mode"),
        ('ENTRYPOINT ["lode"]', 'ENTRYPOINT ["lode"]'),
        ('CMD ["-config.file=/etc/lode/lode.yaml"]', "the default -config.file"),
        ('VOLUME ["/data"]', "a /data volume"),
        ("COPY deploy/config/lode.yaml /etc/lode/lode.yaml", "the default config in the image"),
    ]:
        if needle not in text:
            fail(path, f"missing {what} ({needle})")
    expose = re.search(r"^EXPOSE (.+)$", text, re.M)
    if not expose or not {"3100", "9095"} <= set(expose.group(1).split()):
        fail(path, "EXPOSE must list 3100 (HTTP) and 9095 (gRPC)")
    user = re.findall(r"^USER (\S+)$", text, re.M)
    if not user or user[-1].split(":")[0] in ("root", "0"):
        fail(path, "the runtime image must run as a non-root USER")


# ---------------------------------------------------------------- lode configs


def example_sections():
    example = yaml.safe_load((ROOT / "docs/lode.example.yaml").read_text())
    return set(example)


def check_lode_config(where, text, cluster, seed_hosts):
    """seed_hosts: names a gossip seed may use (Services or compose services)."""
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        fail(where, f"lode config is not valid YAML: {e}")
        return
    if not isinstance(cfg, dict):
        fail(where, "lode config must be a mapping")
        return
    unknown = set(cfg) - example_sections()
    if unknown:
        fail(where, f"unknown top-level sections {sorted(unknown)} (not in docs/lode.example.yaml)")
    if "target" in cfg and cluster:
        fail(where, "a cluster config leaves target to each pod's -target flag")
    if not cluster:
        return
    server = cfg.get("server") or {}
    if server.get("grpc_listen_port") != 9095:
        fail(where, "server.grpc_listen_port must be 9095")
    if server.get("http_listen_port", 3100) != 3100:
        fail(where, "server.http_listen_port must be 3100 (the probes and Services use it)")
    common = cfg.get("common") or {}
    if common.get("replication_factor") != 3:
        fail(where, "common.replication_factor must be 3")
    if not str(common.get("path_prefix", "")).startswith("/data"):
        fail(where, "common.path_prefix must be under the /data volume")
    wal_dir = ((cfg.get("ingester") or {}).get("wal") or {}).get("dir", "")
    if wal_dir and not wal_dir.startswith("/data"):
        fail(where, "ingester.wal.dir must be on the /data volume")
    storage = cfg.get("storage_config") or {}
    s3 = storage.get("s3") or {}
    if storage.get("backend") != "s3" or not s3.get("bucket_name") or not s3.get("endpoint"):
        fail(where, "storage_config must use backend s3 with an endpoint and a bucket_name")
    seeds = (cfg.get("memberlist") or {}).get("join_members") or []
    if not seeds:
        fail(where, "memberlist.join_members must list the gossip seeds")
    for seed in seeds:
        host, _, port = str(seed).rpartition(":")
        if port != "7946":
            fail(where, f"gossip seed {seed!r} must use port 7946")
        if host.split(".")[0] not in seed_hosts:
            fail(where, f"gossip seed {seed!r} names no known service ({sorted(seed_hosts)})")


# ---------------------------------------------------------------- Kubernetes


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_kubernetes():
    docs = {}  # path -> [docs]
    for path in sorted(K8S.glob("*.yaml")):
        try:
            docs[path] = load_all(path)
        except yaml.YAMLError as e:
            fail(path, f"not valid YAML: {e}")
    kust_path = K8S / "kustomization.yaml"
    kust = (docs.pop(kust_path, None) or [{}])[0]
    listed = set(kust.get("resources") or [])
    for path in docs:
        if path.name not in listed:
            fail(kust_path, f"does not list {path.name}")
    for name in listed:
        if not (K8S / name).is_file():
            fail(kust_path, f"lists {name}, which does not exist")

    objs = [(p, d) for p, ds in docs.items() for d in ds]
    by_kind = {}
    for p, d in objs:
        by_kind.setdefault(d.get("kind"), []).append((p, d))
    configmaps = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"] for _, d in by_kind.get("Secret", [])}
    services = {d["metadata"]["name"]: d for _, d in by_kind.get("Service", [])}
    workloads = by_kind.get("StatefulSet", []) + by_kind.get("Deployment", [])
    pod_labels = [d["spec"]["template"]["metadata"].get("labels", {}) for _, d in workloads]

    want = {"ingester": ("StatefulSet", 3), "distributor": ("Deployment", 2), "querier": ("Deployment", 2)}
    seen_roles = set()
    for p, d in workloads:
        name = d["metadata"]["name"]
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if not matches(d["spec"]["selector"].get("matchLabels"), labels):
            fail(p, f"{name}: selector.matchLabels do not match the pod template's labels")
        role = labels.get("app.kubernetes.io/component")
        seen_roles.add(role)
        if role in want:
            kind, replicas = want[role]
            if d["kind"] != kind or d["spec"].get("replicas") != replicas:
                fail(p, f"{name}: the {role}s must be a {kind} of {replicas} replicas")
        spec = pod_spec(d)
        for vol in spec.get("volumes", []):
            cm = (vol.get("configMap") or {}).get("name")
            if cm and cm not in configmaps:
                fail(p, f"{name}: volume {vol['name']} names ConfigMap {cm!r}, which no manifest defines")
        mounted = {v["name"] for v in spec.get("volumes", [])}
        mounted |= {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}
        for c in spec["containers"]:
            args = c.get("args", [])
            if f"-target={role}" not in args:
                fail(p, f"{name}: container {c['name']} must run -target={role}")
            if "-config.file=/etc/lode/lode.yaml" not in args:
                fail(p, f"{name}: container {c['name']} must read -config.file=/etc/lode/lode.yaml")
            ports = {pt.get("name") for pt in c.get("ports", [])}
            for pt in c.get("ports", []):
                if len(pt.get("name", "")) > 15:
                    fail(p, f"{name}: port name {pt['name']!r} is longer than 15 characters")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                get = (c.get(probe) or {}).get("httpGet")
                if get and isinstance(get.get("port"), str) and get["port"] not in ports:
                    fail(p, f"{name}: {probe} uses port {get['port']!r}, which the container does not name")
            if (c.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/ready":
                fail(p, f"{name}: the readiness probe must be GET /ready")
            if (c.get("livenessProbe") or {}).get("httpGet", {}).get("path") not in ("/ready", "/metrics"):
                fail(p, f"{name}: the liveness probe must be GET /ready or /metrics")
            if not (c.get("resources") or {}).get("requests") or not (c.get("resources") or {}).get("limits"):
                fail(p, f"{name}: container {c['name']} needs resource requests and limits")
            for vm in c.get("volumeMounts", []):
                if vm["name"] not in mounted:
                    fail(p, f"{name}: mounts volume {vm['name']!r}, which the pod does not define")
            refs = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
            refs += [
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in c.get("env", [])
                if "secretKeyRef" in (e.get("valueFrom") or {})
            ]
            for s in refs:
                if s not in secrets:
                    fail(p, f"{name}: uses Secret {s!r}, which no manifest defines")
        if d["kind"] == "StatefulSet":
            svc = services.get(d["spec"].get("serviceName"))
            if svc is None or svc["spec"].get("clusterIP") != "None":
                fail(p, f"{name}: serviceName must name a headless Service")
            elif not matches(svc["spec"].get("selector"), labels):
                fail(p, f"{name}: its headless Service does not select its pods")
            if role == "ingester":
                if spec.get("terminationGracePeriodSeconds", 30) < 300:
                    fail(p, f"{name}: terminationGracePeriodSeconds must leave minutes to flush")
                paths = {vm["mountPath"] for c in spec["containers"] for vm in c.get("volumeMounts", [])
                         if vm["name"] in {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}}
                if "/data" not in paths:
                    fail(p, f"{name}: a volumeClaimTemplate must be mounted at /data (data and WAL)")
    for role in want:
        if role not in seen_roles:
            fail(K8S, f"no workload runs the {role}s")

    for p, d in by_kind.get("Service", []) + by_kind.get("PodDisruptionBudget", []):
        sel = d["spec"].get("selector") or {}
        sel = sel.get("matchLabels", sel) if d["kind"] == "PodDisruptionBudget" else sel
        if not any(matches(sel, labels) for labels in pod_labels):
            fail(p, f"{d['kind']} {d['metadata']['name']}: its selector matches no pod")
    gossip = services.get("lode-gossip")
    if not gossip or gossip["spec"].get("clusterIP") != "None" or 7946 not in [
        pt["port"] for pt in gossip["spec"].get("ports", [])
    ]:
        fail(K8S / "services.yaml", "needs the headless Service lode-gossip on port 7946")

    cm = configmaps.get("lode-config")
    if not cm or "lode.yaml" not in cm.get("data", {}):
        fail(K8S / "configmap.yaml", "ConfigMap lode-config must hold lode.yaml")
    else:
        check_lode_config(K8S / "configmap.yaml", cm["data"]["lode.yaml"], True, set(services))


# ---------------------------------------------------------------- Compose


def check_compose(path, cluster):
    compose = yaml.safe_load(path.read_text())
    services = compose.get("services") or {}
    volumes = set(compose.get("volumes") or {})
    lode = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("lode")}
    if not lode:
        fail(path, "no service runs the lode image")
    roles = {}
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            src = str(v).split(":")[0]
            if src.startswith("."):
                if not (path.parent / src).exists():
                    fail(path, f"{name}: mounts {src}, which does not exist")
            elif src not in volumes:
                fail(path, f"{name}: named volume {src!r} is not declared under volumes:")
        for dep in svc.get("depends_on", []) or []:
            if dep not in services:
                fail(path, f"{name}: depends on unknown service {dep!r}")
    for name, svc in lode.items():
        cmd = svc.get("command") or []
        target = [a.split("=", 1)[1] for a in cmd if a.startswith("-target=")]
        if not target:
            fail(path, f"{name}: command must pick a role with -target=")
            continue
        roles.setdefault(target[0], []).append(name)
        if svc.get("build", {}).get("dockerfile") not in (None, "deploy/Dockerfile"):
            fail(path, f"{name}: must build deploy/Dockerfile")
    if cluster:
        count = lambda role: sum(services[n].get("deploy", {}).get("replicas", 1) for n in roles.get(role, []))
        for role, n in [("ingester", 3), ("distributor", 2), ("querier", 2)]:
            if count(role) != n:
                fail(path, f"expected {n} {role}s, found {count(role)}")
        for name in roles.get("ingester", []):
            if not any(str(v).endswith(":/data") for v in services[name].get("volumes", [])):
                fail(path, f"{name}: an ingester needs its own volume at /data for the WAL")
        mounts = [str(v).split(":") for s in lode.values() for v in s.get("volumes", [])]
        cfg_files = {m[0] for m in mounts if len(m) > 1 and m[1] == "/etc/lode/lode.yaml"}
        if len(cfg_files) != 1:
            fail(path, f"every role must mount one and the same config file, found {sorted(cfg_files)}")
        for f in cfg_files:
            check_lode_config(path.parent / f, (path.parent / f).read_text(), True, set(services))
        nginx = (DEPLOY / "config/nginx.conf").read_text()
        for host in re.findall(r"^\s*server\s+([\w.-]+):\d+;", nginx, re.M):
            if host not in services:
                fail(DEPLOY / "config/nginx.conf", f"upstream {host!r} is no service of {path.name}")
        for role, want in [("distributor", "/loki/api/v1/push"), ("querier", "/loki/api/v1/query_range")]:
            if role not in nginx:
                fail(DEPLOY / "config/nginx.conf", f"no upstream for the {role}s ({want})")
    for name, svc in services.items():
        if "grafana" not in str(svc.get("image", "")):
            continue
        url = (svc.get("environment") or {}).get("LODE_URL", "")
        m = re.fullmatch(r"http://([\w-]+):3100", url)
        if not m or m.group(1) not in services:
            fail(path, f"{name}: LODE_URL {url!r} must be http://<a service of this file>:3100")
        if not any(str(v).startswith("./grafana/provisioning:") for v in svc.get("volumes", [])):
            fail(path, f"{name}: must mount ./grafana/provisioning")


def check_grafana():
    path = DEPLOY / "grafana/provisioning/datasources/lode.yaml"
    ds = yaml.safe_load(path.read_text())
    sources = ds.get("datasources") or []
    if ds.get("apiVersion") != 1 or not any(s.get("type") == "loki" and s.get("url") for s in sources):
        fail(path, "must provision a data source of type loki with a url (apiVersion: 1)")


def main():
    check_dockerfile()
    check_lode_config(DEPLOY / "config/lode.yaml", (DEPLOY / "config/lode.yaml").read_text(), False, set())
    check_kubernetes()
    check_compose(DEPLOY / "docker-compose.yaml", cluster=True)
    check_compose(DEPLOY / "docker-compose.single.yaml", cluster=False)
    check_grafana()
    for e in errors:
        print(f"FAIL {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print("deploy: cross-file checks passed")


if __name__ == "__main__":
    main()
