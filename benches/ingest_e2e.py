#!/usr/bin/env python3
"""End-to-end ingest cost of a running Lode (or Loki): MB of raw log lines accepted per
CPU-second of the *server* process (read from /proc/<pid>/stat, so the generator's own CPU does
not count), plus the server's RSS afterwards.

Bodies are generated before the clock starts; every loop is bounded by the --mb volume.
Loopback only. Usage:
  python3 benches/ingest_e2e.py --url http://127.0.0.1:3100 --pid $(pgrep -f 'lode ') \
      --format json|gzip|protobuf --streams 100 --mb 200
protobuf needs `pip install cramjam` (snappy).
"""
import argparse
import gzip
import http.client
import json
import os
import random
import threading
import time
import urllib.parse

LEVELS = ["info"] * 8 + ["debug", "warn", "error"]
PATHS = ["/api/v1/users", "/api/v1/orders", "/healthz", "/api/v1/cart", "/static/app.js"]


def logfmt_line(r, ts_ns, i):
    return (
        f'ts={ts_ns} level={r.choice(LEVELS)} caller=handler.go:{r.randint(10, 400)} '
        f'msg="request served" method=GET path={r.choice(PATHS)} status={r.choice([200]*9+[500])} '
        f'duration={r.randint(1, 900)}ms bytes={r.randint(100, 90000)} user_id=u{r.randint(1, 5000)} '
        f'trace_id={r.getrandbits(64):016x} seq={i}'
    )


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(n, data):
    return varint((n << 3) | 2) + varint(len(data)) + data


def uint_field(n, v):
    return varint(n << 3) + varint(v)


def proto_body(streams):
    req = bytearray()
    for labels, entries in streams:
        s = bytearray(field(1, labels.encode()))
        for ts, line in entries:
            t = uint_field(1, ts // 1_000_000_000) + uint_field(2, ts % 1_000_000_000)
            s += field(2, field(1, t) + field(2, line.encode()))
        req += field(1, bytes(s))
    return bytes(req)


def make_bodies(fmt, n_streams, total_mb, client, clients, batch_lines=1000):
    """Bodies for one client. Clients own disjoint streams, so each stream's entries arrive in
    order however the clients interleave."""
    r = random.Random(42 + client)
    start = time.time_ns() - 60_000_000_000
    bodies, raw, i = [], 0, 0
    labels = [{"job": "bench", "app": f"app{k % 20}", "pod": f"pod-{k}"} for k in range(client, n_streams, clients)]
    n_streams = len(labels)
    while raw < total_mb * 1_000_000:
        per = max(1, batch_lines // n_streams)
        streams = []
        for k in range(n_streams):
            entries = []
            for _ in range(per):
                ts = start + i * 1000
                line = logfmt_line(r, ts, i)
                raw += len(line)
                entries.append((ts, line))
                i += 1
            streams.append((labels[k], entries))
        if fmt == "protobuf":
            import cramjam

            text = [("{" + ", ".join(f'{k}="{v}"' for k, v in sorted(l.items())) + "}", e) for l, e in streams]
            body = bytes(cramjam.snappy.compress_raw(proto_body(text)))
            headers = {"Content-Type": "application/x-protobuf"}
        else:
            doc = {"streams": [{"stream": l, "values": [[str(ts), line] for ts, line in e]} for l, e in streams]}
            body = json.dumps(doc).encode()
            headers = {"Content-Type": "application/json"}
            if fmt == "gzip":
                body = gzip.compress(body, 6)
                headers["Content-Encoding"] = "gzip"
        bodies.append((body, headers))
    return bodies, raw


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:3100")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--format", choices=["json", "gzip", "protobuf"], default="json")
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--clients", type=int, default=2)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    assert u.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
    per_client = [make_bodies(a.format, a.streams, a.mb / a.clients, k, a.clients) for k in range(a.clients)]
    raw = sum(r for _, r in per_client)
    n_bodies = sum(len(b) for b, _ in per_client)
    errors = {}
    lock = threading.Lock()

    def worker(idx):
        conn = http.client.HTTPConnection(u.hostname, u.port or 80)
        for body, headers in per_client[idx][0]:
            conn.request("POST", "/loki/api/v1/push", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 204:
                with lock:
                    errors[resp.status] = errors.get(resp.status, 0) + 1

    cpu0, t0 = cpu_seconds(a.pid), time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1, t1 = cpu_seconds(a.pid), time.time()
    cpu = cpu1 - cpu0
    print(
        f"format={a.format} streams={a.streams} raw_mb={raw/1e6:.1f} bodies={n_bodies} "
        f"wall_s={t1-t0:.2f} server_cpu_s={cpu:.2f} mb_per_cpu_s={raw/1e6/max(cpu,1e-9):.1f} "
        f"rss_mb={rss_mb(a.pid):.1f} errors={errors}"
    )


if __name__ == "__main__":
    main()
