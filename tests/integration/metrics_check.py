#!/usr/bin/python3
# metrics_check.py — parses riftd's /metrics with prometheus_client and checks its per-branch
# series against the API's view of the same branches.
# Usage: metrics_check.py URL TOKEN SOCKET [CA_FILE]
import json
import socket
import ssl
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def api_branches(sock_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(b"GET /v1/branches HTTP/1.1\r\nHost: rift\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    body = data.split(b"\r\n\r\n", 1)[1]
    return {b["name"]: b for b in json.loads(body)["branches"]}


def scrape(url, token, cafile):
    req = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + token})
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        text = r.read().decode()
    samples, families = {}, {}
    for fam in text_string_to_metric_families(text):  # raises on anything malformed
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def mismatch(samples, branches):
    """What differs between /metrics and the API, or None."""
    def get(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        if key not in samples:
            sys.exit(f"FAIL: /metrics lacks {name}{labels}")
        return samples[key]

    for name, b in branches.items():
        checks = [
            (get("rift_branch_bytes", branch=name, kind="own"), b["bytes_own"], "own bytes"),
            (get("rift_branch_bytes", branch=name, kind="shared"), b["bytes_shared"], "shared"),
            (get("rift_branch_connections", branch=name), b["connections"], "connections"),
            (get("rift_branch_running", branch=name), 1 if b["state"] == "running" else 0, "running"),
            (get("rift_branch_starts_total", branch=name), b["starts"], "starts"),
        ]
        for got, want, what in checks:
            if got != want:
                return f"branch {name}: /metrics says {what} {got}, the API {want}"
    return None


def main():
    url, token, sock_path = sys.argv[1:4]
    cafile = sys.argv[4] if len(sys.argv) > 4 else None
    # a running branch's server still writes (checkpoints): compare a snapshot that held still,
    # the API's view the same before and after the scrape
    for attempt in range(30):
        before = api_branches(sock_path)
        samples, families = scrape(url, token, cafile)
        after = api_branches(sock_path)
        why = mismatch(samples, before) if before == after else "the branches changed meanwhile"
        if why is None:
            break
        time.sleep(0.5)
    else:
        sys.exit(f"FAIL: after 30 tries: {why}")
    branches = before

    def get(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    for fam, kind in [("rift_start_seconds", "histogram"), ("rift_store_write_seconds", "histogram"),
                      ("rift_store_sync_seconds", "histogram"), ("rift_router_sessions", "gauge"),
                      ("rift_router_bytes", "counter"), ("rift_branch_starts", "counter")]:
        if fam not in families or families[fam].type != kind:
            sys.exit(f"FAIL: /metrics has no {kind} {fam}")
    if get("rift_start_seconds_count") < 1:
        sys.exit("FAIL: a branch started but rift_start_seconds_count is 0")
    if get("rift_store_sync_seconds_count") < 1 or get("rift_store_write_seconds_count") < 1:
        sys.exit("FAIL: the store wrote and synced but its latency counts are 0")
    open_now = sum(get("rift_router_sessions", mode=m) for m in ("relayed", "spliced"))
    connected = sum(b["connections"] for b in branches.values())
    if open_now != connected or connected < 1:
        sys.exit(f"FAIL: router sessions relayed+spliced {open_now}, branch connections {connected}")
    if get("rift_router_bytes_total", mode="relayed") + get("rift_router_bytes_total", mode="spliced") <= 0:
        sys.exit("FAIL: clients moved bytes but rift_router_bytes_total is 0")
    print(f"metrics_check: {len(branches)} branches match, {len(families)} families parse")


main()
