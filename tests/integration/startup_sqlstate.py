#!/usr/bin/env python3
"""startup_sqlstate.py — sends a plaintext startup packet and prints the SQLSTATE of the error
the server (or rift's router) answers with, or "auth" when it asks for a password or lets the
client in: libpq shows a login error's text but not its code.

usage: startup_sqlstate.py HOST PORT USER DATABASE
"""
import socket
import struct
import sys


def main():
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    host, port, user, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", db)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    s = socket.create_connection((host, port), timeout=120)
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    buf = b""
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            chunk = s.recv(65536)
            if not chunk:
                print("closed")
                return 1
            buf += chunk
        kind, n = buf[0:1], struct.unpack("!I", buf[1:5])[0]
        msg, buf = buf[5:1 + n], buf[1 + n:]
        if kind == b"E":
            for field in msg.split(b"\0"):
                if field[:1] == b"C":
                    print(field[1:].decode())
                    return 0
            print("no code")
            return 1
        if kind == b"R":
            print("auth")
            return 0


sys.exit(main())
