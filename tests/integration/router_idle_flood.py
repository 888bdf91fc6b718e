#!/usr/bin/env python3
# router_idle_flood.py — holds COUNT connections to the router open without sending a byte,
# touches READY_FILE once they are all open, and closes them when STOP_FILE appears (or after
# 120 s). The router may close some of them; that is the point.
import os, resource, socket, sys, time

port, count, ready_file, stop_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < count + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
socks, refused = [], 0
for _ in range(count):
    try:
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    except OSError:
        refused += 1
print(f"router_idle_flood: {len(socks)} connections open, {refused} refused", flush=True)
open(ready_file, "w").close()
deadline = time.time() + 120
while not os.path.exists(stop_file) and time.time() < deadline:
    time.sleep(0.1)
for s in socks:
    s.close()
