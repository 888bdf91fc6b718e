#!/usr/bin/env python3
# router_second_key.py — logins to a branch whose server sends thousands of BackendKeyData end
# in 08P01; afterwards a query on another branch can still be cancelled through the router.
import socket, struct, sys, time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import pgwire

port, password = int(sys.argv[1]), sys.argv[2]
failures = []

# logins that stay open while the other branch is tried: each would have taken every free slot
# (it frees just one when it ends), so the other branch's key could not route
evil = []
for i in range(3):
    s = pgwire.connect(port)
    try:
        pgwire.login(s, [("user", "victim"), ("database", "evil")], "victim")
        failures.append(f"login {i} to evil succeeded despite its server's extra BackendKeyData")
    except pgwire.LoginError as e:
        if e.fields.get("C") != "08P01" or "second BackendKeyData" not in e.fields.get("M", ""):
            failures.append(f"login {i} to evil got {e.fields}")
    except (EOFError, OSError) as e:
        failures.append(f"login {i} to evil: the connection broke without an error: {e}")
    evil.append(s)

# a normal branch logs in, and its query is cancelled through the router's cancel key
s = pgwire.connect(port)
s.sendall(pgwire.startup([("user", "rift"), ("database", "good")]))
key = None
while True:
    kind, body = pgwire.read_msg(s)
    if kind == b"E":
        sys.exit(f"login to good failed: {pgwire.error_fields(body)}")
    if kind == b"K":
        key = body
    elif kind == b"Z":
        break
    elif kind == b"R" and struct.unpack("!I", body[:4])[0] == 10:
        pgwire._scram(s, password)
if key is None:
    sys.exit("no BackendKeyData from good")
s.sendall(pgwire.msg(b"Q", b"select pg_sleep(30)\0"))
time.sleep(0.5)
c = pgwire.connect(port)
c.sendall(struct.pack("!II", 8 + len(key), 80877102) + key)
c.close()
s.settimeout(15)
err = None
t0 = time.monotonic()
try:
    while True:
        kind, body = pgwire.read_msg(s)
        if kind == b"E":
            err = pgwire.error_fields(body)
        elif kind == b"Z":
            break
except (socket.timeout, EOFError) as e:
    failures.append(f"the query on good was not cancelled: {e}")
if err is not None and err.get("C") != "57014":
    failures.append(f"the query on good ended with {err}")
elif err is None and not failures:
    failures.append("the query on good ran to its end: the cancel did not route")
pgwire.terminate(s)
for s in evil:
    s.close()

for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
