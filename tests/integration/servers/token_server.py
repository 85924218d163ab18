#!/usr/bin/env python3
"""token_server.py - a docker token-spec auth server for the tests.

GET  /token?service=&scope=..  Basic credentials or anonymous
POST /token                    OAuth2 grant_type=refresh_token|password

Issues RS256 JWTs that docker-registry (distribution 2.8) accepts: the
header carries the signing certificate in x5c, chained to the CA given to
the registry as rootcertbundle.  Signing uses the openssl command, so only
the python3 standard library is needed.

Every token request is appended to --log as one JSON line:
{"method", "grant", "user", "scopes": [...], "status"}.  --expire-first N
makes the first N tokens already expired (exp in the past), and so does
the next token after the file --expire-flag appears (the file is then
removed), so the client's refresh-on-401 path runs.  Test-only: no TLS, secrets in plain files.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class State:
    def __init__(self, args):
        self.args = args
        self.users = {}
        for line in open(args.users):
            line = line.strip()
            if line and ":" in line:
                u, p = line.split(":", 1)
                self.users[u] = p
        self.refresh = {}
        if args.refresh_tokens:
            for line in open(args.refresh_tokens):
                line = line.strip()
                if line and "=" in line:
                    t, u = line.split("=", 1)
                    self.refresh[t] = u
        der = subprocess.run(
            ["openssl", "x509", "-in", args.cert, "-outform", "DER"],
            check=True, capture_output=True).stdout
        self.x5c = [base64.b64encode(der).decode()]
        self.lock = threading.Lock()
        self.expire_left = args.expire_first

    def log(self, entry):
        with self.lock:
            with open(self.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.args.key],
            input=signing_input.encode(), check=True,
            capture_output=True).stdout
        return signing_input + "." + b64url(sig)

    def token(self, user, scopes):
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
            acts = [a for a in actions.split(",") if a]
            if user is None:
                acts = [a for a in acts if a == "pull"] \
                    if self.args.anonymous_pull else []
            if acts:
                access.append({"type": typ, "name": name, "actions": acts})
        now = int(time.time())
        exp = now + 300
        with self.lock:
            if self.expire_left > 0:
                self.expire_left -= 1
                exp = now - 120
            elif self.args.expire_flag and \
                    os.path.exists(self.args.expire_flag):
                os.unlink(self.args.expire_flag)
                exp = now - 120
        claims = {"iss": self.args.issuer, "sub": user or "",
                  "aud": self.args.service, "exp": exp, "nbf": now - 60,
                  "iat": now - 60, "jti": uuid.uuid4().hex,
                  "access": access}
        return self.sign(claims)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="token"')
        self.end_headers()
        self.wfile.write(body)

    def basic_user(self):
        st = self.server.state
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return None, True
        try:
            u, p = base64.b64decode(h[6:]).decode().split(":", 1)
        except Exception:
            return None, False
        return (u, True) if st.users.get(u) == p else (None, False)

    def do_GET(self):
        st = self.server.state
        q = parse_qs(urlparse(self.path).query)
        scopes = q.get("scope", [])
        user, ok = self.basic_user()
        entry = {"method": "GET", "grant": "basic" if user else "anonymous",
                 "user": user, "scopes": scopes,
                 "service": q.get("service", [""])[0]}
        if not ok:
            entry["status"] = 401
            st.log(entry)
            return self.reply(401, {"details": "bad credentials"})
        entry["status"] = 200
        st.log(entry)
        self.reply(200, {"token": st.token(user, scopes),
                         "expires_in": 300})

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(n).decode())
        grant = form.get("grant_type", [""])[0]
        scopes = " ".join(form.get("scope", [])).split()
        user = None
        if grant == "refresh_token":
            user = st.refresh.get(form.get("refresh_token", [""])[0])
        elif grant == "password":
            u = form.get("username", [""])[0]
            if st.users.get(u) == form.get("password", [""])[0]:
                user = u
        entry = {"method": "POST", "grant": grant, "user": user,
                 "scopes": scopes,
                 "client_id": form.get("client_id", [""])[0],
                 "service": form.get("service", [""])[0]}
        if user is None:
            entry["status"] = 401
            st.log(entry)
            return self.reply(401, {"error": "invalid_grant"})
        entry["status"] = 200
        st.log(entry)
        self.reply(200, {"access_token": st.token(user, scopes),
                         "expires_in": 300, "scope": " ".join(scopes)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--issuer", default="te-test-issuer")
    ap.add_argument("--service", default="te-test-registry")
    ap.add_argument("--users", required=True)
    ap.add_argument("--refresh-tokens")
    ap.add_argument("--log", required=True)
    ap.add_argument("--expire-first", type=int, default=0)
    ap.add_argument("--expire-flag")
    ap.add_argument("--anonymous-pull", action="store_true")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
