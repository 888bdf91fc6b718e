#!/usr/bin/env python3
"""router_direct_tls.py — direct TLS (PG 17 sslnegotiation=direct) against the router: TLS first
with ALPN "postgresql", then the startup packet; no ALPN means no Postgres. libpq 15 cannot do
this, so the handshake is driven here. usage: router_direct_tls.py PORT CAFILE BRANCH USER"""
import socket
import ssl
import struct
import sys

port, cafile, branch, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def startup(database):
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    return struct.pack("!ii", 8 + len(params), 196608) + params


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def first_message(alpn, database):
    ctx = ssl.create_default_context(cafile=cafile)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
    except (ssl.SSLError, OSError) as e:
        raw.close()
        return None, "handshake failed: %s" % e
    try:
        chosen = tls.selected_alpn_protocol()
        tls.sendall(startup(database))
        head = recv_exact(tls, 5)
        if len(head) < 5:
            return None, "closed (ALPN %s)" % chosen
        body = recv_exact(tls, struct.unpack("!i", head[1:5])[0] - 4)
        return head[:1], body
    except (ssl.SSLError, OSError) as e:
        return None, "closed: %s" % e
    finally:
        tls.close()


kind, detail = first_message(["postgresql"], branch)
if kind != b"R":
    sys.exit("direct TLS with ALPN postgresql: expected an authentication request, got %r %r"
             % (kind, detail))
kind, detail = first_message(["postgresql"], "no-such-branch")
if kind != b"E" or b"3D000" not in detail:
    sys.exit("direct TLS to an unknown branch: expected ErrorResponse 3D000, got %r %r"
             % (kind, detail))
kind, detail = first_message(None, branch)
if kind is not None:
    sys.exit("direct TLS without ALPN reached Postgres: %r %r" % (kind, detail))
kind, detail = first_message(["http/1.1"], branch)
if kind is not None:
    sys.exit("direct TLS with ALPN http/1.1 reached Postgres: %r %r" % (kind, detail))
print("direct TLS: ALPN postgresql routed, unknown branch 3D000, no or other ALPN refused")
