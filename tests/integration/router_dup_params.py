#!/usr/bin/env python3
# router_dup_params.py — a startup packet naming "user" twice must not let a client borrow the
# trust the server gave the other role: it is refused (08P01), and a kept session of the first
# role is still handed out only after that role's password.
import sys, time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import pgwire

port, password, branch = int(sys.argv[1]), sys.argv[2], sys.argv[3]
params = [("user", "rift"), ("database", branch), ("application_name", "dup")]
failures = []

# a session of rift, kept by the router when its client leaves
s = pgwire.connect(port)
pgwire.login(s, params, password)
kept_pid = pgwire.query(s, "select pg_backend_pid()")[0]
pgwire.terminate(s)
time.sleep(0.5)  # the router resets it (DISCARD ALL) before handing it out

# rift first, trustme last: the server would log in trustme without a password
s = pgwire.connect(port)
try:
    pgwire.login(s, [("user", "rift"), ("database", branch), ("user", "trustme")])
    failures.append("a startup packet with two \"user\" values logged in")
except pgwire.LoginError as e:
    if e.fields.get("C") != "08P01" or e.fields.get("M") != 'duplicate startup parameter "user"':
        failures.append(f"two \"user\" values got {e.fields}")
s.close()
# at once, rift's packet with no password: the server (or the router for it) must ask for one
s = pgwire.connect(port)
try:
    pgwire.login(s, params)
    failures.append("rift's kept session was handed out without a password")
except pgwire.LoginError as e:
    if "password was asked" not in str(e):
        failures.append(f"rift without a password got {e.fields}")
s.close()

for dup in ("database", "options", "application_name"):
    s = pgwire.connect(port)
    try:
        pgwire.login(s, params + [("options", "-c work_mem=4MB"), (dup, "x")], password)
        failures.append(f"a startup packet with two {dup!r} values logged in")
    except pgwire.LoginError as e:
        if e.fields.get("C") != "08P01":
            failures.append(f"two {dup!r} values got {e.fields}")
    s.close()

# the kept session is still there for rift with its password
s = pgwire.connect(port)
pgwire.login(s, params, password)
pid = pgwire.query(s, "select pg_backend_pid()")[0]
pgwire.terminate(s)
if pid != kept_pid:
    failures.append(f"the kept session {kept_pid} was not reused (got {pid})")
for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print("router_dup_params: ok")
