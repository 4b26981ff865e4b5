#!/usr/bin/env bash
# Runs Lode's cluster topology on one machine, every role its own process on loopback:
# 3 ingesters, 2 distributors and 2 queriers, gossiping over UDP, replication factor 3,
# sharing one filesystem store (or any storage_config given in $LODE_STORAGE_YAML; more config
# sections, e.g. limits_config, in $LODE_EXTRA_YAML).
#
#   deploy/local-cluster.sh start DIR   # starts the 7 processes, data and logs under DIR
#   deploy/local-cluster.sh stop DIR    # SIGTERM to each (ingesters flush and leave)
#
# `start` waits until every member answers /ready and a distributor takes a push, then prints
# the distributors' and queriers' URLs and every pid (DIR/pids), e.g. for lode-bench:
#   lode-bench --url=$(cat DIR/distributors) --query-url=$(head -1 DIR/queriers | cut -d, -f1) \
#              --pid=$(paste -sd, DIR/pids) ...
# Ports: HTTP 3200-3206, gRPC 9200-9202, gossip 7200-7206 (override the base with
# LODE_PORT_BASE=N: HTTP 3N00, gRPC 9N00, gossip 7N00 with N one digit).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
lode=${LODE_BIN:-$(dirname "$0")/../target/release/lode}
n=${LODE_PORT_BASE:-2}

stop() {
  [[ -f $dir/pids ]] || return 0
  while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$dir/pids"
  for _ in $(seq 1 300); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$dir/pids"
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  rm -f "$dir/pids"
}

case $cmd in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

[[ -x $lode ]] || { echo "no lode binary at $lode (cargo build --release -p lode, or set LODE_BIN)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
: >"$dir/pids"
storage=${LODE_STORAGE_YAML:-"storage_config:
  filesystem:
    directory: $dir/store"}
cat >"$dir/lode.yaml" <<YAML
$storage
memberlist:
  gossip_interval: 200ms
${LODE_EXTRA_YAML:-}
YAML

member() { # role index instance http gossip [grpc]
  local role=$1 id=$2 http=$3 gossip=$4 grpc=${5:-}
  local args=(-config.file="$dir/lode.yaml" -target="$role" -common.instance-id="$id"
    -common.path-prefix="$dir/$id" -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http"
    -memberlist.bind-addr=127.0.0.1 -memberlist.bind-port="$gossip" -memberlist.join=127.0.0.1:7${n}00)
  [[ -n $grpc ]] && args+=(-server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc")
  "$lode" "${args[@]}" >"$dir/$id.log" 2>&1 &
  echo $! >>"$dir/pids"
}

for i in 0 1 2; do member ingester "ingester-$i" "3${n}0$i" "7${n}0$i" "9${n}0$i"; done
for i in 0 1; do member distributor "distributor-$i" "3${n}0$((3 + i))" "7${n}0$((3 + i))"; done
for i in 0 1; do member querier "querier-$i" "3${n}0$((5 + i))" "7${n}0$((5 + i))"; done
echo "http://127.0.0.1:3${n}03,http://127.0.0.1:3${n}04" >"$dir/distributors"
echo "http://127.0.0.1:3${n}05,http://127.0.0.1:3${n}06" >"$dir/queriers"

# Bounded waits: every member ready, then the distributors take a push (the ring has formed).
for i in 0 1 2 3 4 5 6; do
  for t in $(seq 1 300); do
    curl -fs "http://127.0.0.1:3${n}0$i/ready" >/dev/null && break
    [[ $t == 300 ]] && { echo "member on port 3${n}0$i never became ready; see $dir/*.log" >&2; stop; exit 1; }
    sleep 0.1
  done
done
for d in 3 4; do
  for t in $(seq 1 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
      --data "{\"streams\":[{\"stream\":{\"job\":\"local-cluster\"},\"values\":[[\"$(date +%s%N)\",\"ring formed\"]]}]}" \
      "http://127.0.0.1:3${n}0$d/loki/api/v1/push")
    [[ $code == 204 ]] && break
    [[ $t == 300 ]] && { echo "distributor on port 3${n}0$d never took a push ($code); see $dir/*.log" >&2; stop; exit 1; }
    sleep 0.1
  done
done
echo "distributors: $(cat "$dir/distributors")"
echo "queriers:     $(cat "$dir/queriers")"
echo "pids:         $(paste -sd, "$dir/pids")"
