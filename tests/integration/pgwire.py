# pgwire.py — a small Postgres wire client for router tests: raw startup packets, messages, and
# the client side of SCRAM-SHA-256, so a test controls every byte a client sends.
import base64, hashlib, hmac, os, socket, struct


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def startup(params, proto=196608):
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
    return struct.pack("!II", 8 + len(body), proto) + body


def msg(kind, body):
    return kind + struct.pack("!I", 4 + len(body)) + body


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_msg(s):
    """One message: (type byte, body)."""
    hdr = recv_exact(s, 5)
    n = struct.unpack("!I", hdr[1:])[0]
    return hdr[:1], recv_exact(s, n - 4)


def error_fields(body):
    """An ErrorResponse body as {code letter: text}."""
    out = {}
    for f in body.split(b"\0"):
        if f:
            out[chr(f[0])] = f[1:].decode(errors="replace")
    return out


class LoginError(Exception):
    def __init__(self, fields):
        super().__init__(f"{fields.get('C')} {fields.get('M')}")
        self.fields = fields


def _hmac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def login(s, params, password=None):
    """Sends the startup packet and answers trust or SCRAM-SHA-256 until ReadyForQuery.
    Returns the ParameterStatus values; raises LoginError on an ErrorResponse."""
    s.sendall(startup(params))
    status = {}
    while True:
        kind, body = read_msg(s)
        if kind == b"E":
            raise LoginError(error_fields(body))
        if kind == b"S":
            k, v = body[:-1].split(b"\0", 1)
            status[k.decode()] = v.decode()
        elif kind == b"Z":
            return status
        elif kind == b"R":
            code = struct.unpack("!I", body[:4])[0]
            if code == 10:
                if password is None:
                    raise LoginError({"C": "client", "M": "a password was asked for"})
                _scram(s, password)
            elif code not in (0, 12):  # 12: SASLFinal (its signature is not checked here)
                raise LoginError({"C": "client", "M": f"authentication request {code}"})


def _scram(s, password):
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=,r=" + cnonce
    first = ("n,," + first_bare).encode()
    s.sendall(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
    kind, body = read_msg(s)
    if kind == b"E":
        raise LoginError(error_fields(body))
    assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 11, (kind, body[:8])
    server_first = body[4:].decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = _hmac(salted, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=biws,r=" + attrs["r"]
    auth_message = ",".join((first_bare, server_first, without_proof)).encode()
    proof = bytes(a ^ b for a, b in zip(client_key, _hmac(stored_key, auth_message)))
    final = without_proof + ",p=" + base64.b64encode(proof).decode()
    s.sendall(msg(b"p", final.encode()))


def query(s, sql):
    """Runs a simple query; returns the first column of each row as text."""
    s.sendall(msg(b"Q", sql.encode() + b"\0"))
    rows, err = [], None
    while True:
        kind, body = read_msg(s)
        if kind == b"D":
            n = struct.unpack("!I", body[2:6])[0]
            rows.append(body[6:6 + n].decode())
        elif kind == b"E":
            err = error_fields(body)
        elif kind == b"Z":
            if err:
                raise LoginError(err)
            return rows


def terminate(s):
    s.sendall(msg(b"X", b""))
    s.close()
