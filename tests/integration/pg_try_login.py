#!/usr/bin/env python3
# pg_try_login.py PORT USER DATABASE [PASSWORD] — logs in through the router with pgwire and
# prints "ok <backend pid>" or the SQLSTATE of the error (exit 0 either way; 1 on a crash).
import sys, os

sys.path.insert(0, os.path.dirname(__file__))
import pgwire

port, user, db = int(sys.argv[1]), sys.argv[2], sys.argv[3]
password = sys.argv[4] if len(sys.argv) > 4 else None
s = pgwire.connect(port, timeout=90)
try:
    pgwire.login(s, [("user", user), ("database", db)], password)
    print("ok", pgwire.query(s, "select pg_backend_pid()")[0])
    pgwire.terminate(s)
except pgwire.LoginError as e:
    print(e.fields.get("C"), e.fields.get("M"))
