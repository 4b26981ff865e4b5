#!/usr/bin/env bash
# lode-bench against the single binary and the 7-process cluster (deploy/local-cluster.sh:
# 3 ingesters at replication factor 3, 2 distributors, 2 queriers), JSON and protobuf, RUNS runs
# each on a fresh server and data directory. Server CPU and RSS are summed over every process
# of the topology. Prints one JSON report per run (prefixed by topology and encoding) and a
# table of medians.
#
#   benches/topologies.sh [RUNS=3] [MB=200]
# Needs target/release/lode and target/release/lode-bench (or LODE_BIN / LODE_BENCH_BIN).
set -euo pipefail
runs=${1:-3}
mb=${2:-200}
root=$(cd "$(dirname "$0")/.." && pwd)
lode=${LODE_BIN:-$root/target/release/lode}
bench=${LODE_BENCH_BIN:-$root/target/release/lode-bench}
work=$(mktemp -d /tmp/lode-topologies.XXXXXX)
# A failed run must not leave a cluster holding the ports of the next one.
cleanup() {
  for d in "$work"/cluster-*; do [[ -d $d ]] && "$root/deploy/local-cluster.sh" stop "$d"; done
  rm -rf "$work"
}
trap cleanup EXIT
limits='limits_config:
  ingestion_rate_mb: 10000
  ingestion_burst_size_mb: 10000
  per_stream_rate_limit: 0'
printf '%s\n' "$limits" >"$work/limits.yaml"
results=$work/results.jsonl

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for r in $(seq 1 "$runs"); do
  for enc in json protobuf; do
    # Single binary.
    d=$work/single-$r-$enc
    mkdir -p "$d"
    port=$(free_port)
    "$lode" -config.file="$work/limits.yaml" -server.http-listen-address=127.0.0.1 \
      -server.http-listen-port="$port" -common.path-prefix="$d" 2>"$d/log" &
    pid=$!
    for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
    report=$("$bench" --url="http://127.0.0.1:$port" --pid=$pid --mb="$mb" --streams=100 \
      --encoding="$enc" --verify --json)
    kill -TERM $pid; wait $pid || true
    echo "{\"topology\":\"single\",\"encoding\":\"$enc\",\"report\":$(echo "$report" | tr -d '\n')}" | tee -a "$results"
    rm -rf "$d"

    # The 7-process cluster.
    d=$work/cluster-$r-$enc
    LODE_BIN=$lode LODE_EXTRA_YAML=$limits "$root/deploy/local-cluster.sh" start "$d" >/dev/null
    report=$("$bench" --url="$(cat "$d/distributors")" --query-url="$(cut -d, -f1 "$d/queriers")" \
      --pid="$(paste -sd, "$d/pids")" --mb="$mb" --streams=100 --encoding="$enc" --verify --json)
    "$root/deploy/local-cluster.sh" stop "$d"
    echo "{\"topology\":\"cluster\",\"encoding\":\"$enc\",\"report\":$(echo "$report" | tr -d '\n')}" | tee -a "$results"
    rm -rf "$d"
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| topology | encoding | MB/s | push p50 / p99 ms | server CPU-s | MB per server CPU-s | RSS after (sum) | non-2xx | lines counted back |")
print("|---|---|---|---|---|---|---|---|---|")
for topo in ["single", "cluster"]:
    for enc in ["json", "protobuf"]:
        rs = [r["report"] for r in rows if r["topology"] == topo and r["encoding"] == enc]
        if not rs:
            continue
        med = lambda f: statistics.median(f(r) for r in rs)
        rng = lambda f: f"{min(f(r) for r in rs):.1f}-{max(f(r) for r in rs):.1f}"
        mbs = lambda r: r["mb_per_s"]
        per_cpu = lambda r: r["mb_per_server_cpu_s"]
        errors = sum(sum(r["errors_by_status"].values()) + r["transport_errors"] for r in rs)
        counted = min((r.get("queryable_lines") or 0) - r["lines_ok"] for r in rs)
        print(f"| {topo} | {enc} | {med(mbs):.1f} ({rng(mbs)}) | "
              f"{med(lambda r: r['push_latency_ms']['p50']):.2f} / {med(lambda r: r['push_latency_ms']['p99']):.1f} | "
              f"{med(lambda r: r['server_cpu_s']):.2f} | {med(per_cpu):.1f} ({rng(per_cpu)}) | "
              f"{med(lambda r: r['server_rss_bytes'])/1e6:.0f} MB | {errors} | "
              f"{'all' if counted == 0 else counted} |")
PY
