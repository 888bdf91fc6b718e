#!/usr/bin/env python3
"""router_tls_flood.py — a hostile TLS client for router_tls_relay.sh: logs in over TLS, waits
until its session has gone to a relay thread, asks for an endless flood of rows and then drains
its socket raw, without decrypting, so riftd's relay (not this client) is always the slowest
party. Runs until killed. usage: router_tls_flood.py PORT BRANCH USER PASSWORD"""
import os
import ssl
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgwire  # noqa: E402

port, branch, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

s = pgwire.connect(port, timeout=30)
s.sendall(struct.pack("!II", 8, 80877103))  # SSLRequest
if pgwire.recv_exact(s, 1) != b"S":
    sys.exit("router_tls_flood: the router refused TLS")
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
pgwire.login(t, [("user", user), ("database", branch)], password)
pgwire.query(t, "select pg_sleep(1.2)")  # a keepable session leaves the loop after a second
t.sendall(pgwire.msg(b"Q", b"copy (select repeat('x', 1000000) from generate_series(1, 1000000))"
                     b" to stdout\0"))
print("flooding", flush=True)
fd = t.fileno()
os.set_blocking(fd, True)
while os.read(fd, 1 << 20):
    pass
sys.exit("router_tls_flood: the router closed the flood")
