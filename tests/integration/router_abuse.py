#!/usr/bin/env python3
# router_abuse.py — hostile and broken clients against the router; it must keep serving others.
import os, random, socket, struct, sys, time

port = int(sys.argv[1])
seed = int(os.environ.get("RIFT_SEED", str(int(time.time()))))
rnd = random.Random(seed)
print(f"router_abuse: seed {seed}")


def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def startup(params, proto=196608):
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
    return struct.pack("!II", 8 + len(body), proto) + body


def read_all(s, limit=65536):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def expect_error(data, code, what):
    if not data.startswith(b"E") or (b"C" + code.encode() + b"\0") not in data:
        sys.exit(f"FAIL {what}: expected ErrorResponse {code}, got {data[:80]!r}")


valid = startup([("user", "rift"), ("database", "main")])

# every truncated prefix: the router waits for more, then the client goes away
for i in range(len(valid)):
    s = conn()
    s.sendall(valid[:i])
    s.close()

# lengths: under 8, negative, over 10000 -> 08P01
for raw in (struct.pack("!ii", 4, 196608), struct.pack("!ii", -1, 196608),
            struct.pack("!ii", 10001, 196608) + b"x" * 100):
    s = conn()
    s.sendall(raw)
    expect_error(read_all(s), "08P01", f"bad length {raw[:8].hex()}")
    s.close()

# garbage
for _ in range(20):
    s = conn()
    junk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(8, 64)))
    s.sendall(junk)
    read_all(s)
    s.close()

# plaintext pipelined after SSLRequest: closed without an answer beyond the 'S'/'N'
s = conn()
s.sendall(struct.pack("!II", 8, 80877103) + valid)
data = read_all(s)
if len(data) > 1:
    sys.exit(f"FAIL pipelined SSLRequest got {data[:40]!r}")
s.close()

# missing user -> 28000; protocol 2 -> 08P01
s = conn()
s.sendall(startup([("database", "main")]))
expect_error(read_all(s), "28000", "missing user")
s.close()
s = conn()
s.sendall(struct.pack("!II", 9, 0x20000) + b"\0")
expect_error(read_all(s), "08P01", "protocol 2")
s.close()

# a silent client is dropped after the login timeout (2 s in this test's rift.conf)
s = conn()
t0 = time.time()
data = read_all(s)
if time.time() - t0 > 8:
    sys.exit("FAIL silent client was not dropped by the login timeout")
s.close()

# 1000 connections opened and dropped at random points of the startup
socks = []
for i in range(1000):
    s = conn()
    cut = rnd.randint(0, len(valid))
    s.sendall(valid[:cut])
    socks.append(s)
    if len(socks) > 50:
        victim = socks.pop(rnd.randrange(len(socks)))
        victim.close()
for s in socks:
    s.close()
print("router_abuse: done")
