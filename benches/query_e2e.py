#!/usr/bin/env python3
"""End-to-end query cost of a running Lode (or Loki): loads a bounded dataset (logfmt lines
spread evenly over the last 2 hours across --streams streams), optionally flushes it to the
store, then runs each query class --runs times and reports, per class, the median wall time and
the raw line MB the server reports scanning (stats.summary.totalBytesProcessed) per
wall-second and per CPU-second of the *server* process (read from
/proc/<pid>/stat, so this script's own CPU does not count).

Loopback only; every loop is bounded by --mb and --runs. Usage:
  python3 benches/query_e2e.py --url http://127.0.0.1:3100 --pid $(pgrep -f 'lode ') \
      --streams 30 --mb 200 --runs 5 [--flush]
"""
import argparse
import http.client
import json
import os
import random
import statistics
import time
import urllib.parse

LEVELS = ["info"] * 8 + ["debug", "warn", "error"]
PATHS = ["/api/v1/users", "/api/v1/orders", "/healthz", "/api/v1/cart", "/static/app.js"]

QUERIES = {
    "needle": '{job="qbench"} |= "needle-7f3a"',
    "logfmt_filter": '{job="qbench"} | logfmt | level="error"',
    "count_by_level": 'sum by (level) (count_over_time({job="qbench"} | logfmt [1m]))',
    "rate_needle": 'sum(rate({job="qbench"} |= "status=500" [1m]))',
}


def line(r, i):
    s = (
        f'level={r.choice(LEVELS)} caller=handler.go:{r.randint(10, 400)} msg="request served" '
        f'method=GET path={r.choice(PATHS)} status={r.choice([200] * 9 + [500])} '
        f'duration={r.randint(1, 900)}ms bytes={r.randint(100, 90000)} user_id=u{r.randint(1, 5000)} '
        f'trace_id={r.getrandbits(64):016x} seq={i}'
    )
    # One line in 100k carries the needle, so `|=` finds a handful.
    return s + " needle-7f3a" if i % 100_000 == 7 else s


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tick


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise SystemExit(f"{method} {path}: {resp.status} {data[:300]!r}")
    return data


def load(conn, streams, mb, now_ns):
    r = random.Random(42)
    span = 2 * 3600 * 1_000_000_000
    target = mb * 1_000_000
    # Lines per stream at the average line size, spread evenly over the 2 hours.
    per_stream = max(1, target // (len(line(r, 0)) * streams))
    step = span // per_stream
    raw = 0
    batch = 2000
    for start in range(0, per_stream, batch):
        body = {"streams": []}
        for s in range(streams):
            values = []
            for i in range(start, min(start + batch, per_stream)):
                text = line(r, s * per_stream + i)
                raw += len(text)
                values.append([str(now_ns - span + i * step), text])
            body["streams"].append({"stream": {"job": "qbench", "pod": f"pod-{s}"}, "values": values})
        request(conn, "POST", "/loki/api/v1/push", json.dumps(body), {"Content-Type": "application/json"})
    return raw, per_stream * streams


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:3100")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--streams", type=int, default=30)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--flush", action="store_true", help="POST /flush after loading")
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    now_ns = time.time_ns()
    raw, lines = load(conn, args.streams, args.mb, now_ns)
    print(f"loaded {lines} lines, {raw / 1e6:.1f} MB raw, {args.streams} streams over 2h")
    if args.flush:
        request(conn, "POST", "/flush")
        time.sleep(1)
    start_s = (now_ns - 2 * 3600 * 1_000_000_000) / 1e9
    end_s = now_ns / 1e9 + 1
    print(f"{'query':16} {'median ms':>10} {'MB scanned':>10} {'MB/s wall':>10} {'MB/CPU-s':>10}")
    for name, q in QUERIES.items():
        walls, cpus, scanned = [], [], []
        for _ in range(args.runs):
            params = urllib.parse.urlencode(
                {"query": q, "start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "step": "60", "limit": "100"}
            )
            c0, t0 = cpu_seconds(args.pid), time.perf_counter()
            body = json.loads(request(conn, "GET", "/loki/api/v1/query_range?" + params))
            walls.append(time.perf_counter() - t0)
            cpus.append(cpu_seconds(args.pid) - c0)
            # What the server says it scanned: a log query stops early once its limit is met.
            scanned.append(body["data"]["stats"]["summary"]["totalBytesProcessed"])
        wall, cpu, mb = statistics.median(walls), statistics.median(cpus), statistics.median(scanned) / 1e6
        print(
            f"{name:16} {wall * 1000:10.0f} {mb:10.1f} {mb / wall:10.0f} "
            f"{(mb / cpu) if cpu > 0 else float('inf'):10.0f}"
        )


if __name__ == "__main__":
    main()
