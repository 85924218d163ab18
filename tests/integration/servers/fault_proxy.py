#!/usr/bin/env python3
"""fault_proxy.py - a fault-injecting HTTP reverse proxy for the tests.

Forwards every request to --upstream (Host header kept, so a registry's
absolute Locations point back at the proxy) unless a rule from --rules
matches first.  The rules file is a JSON list, re-read whenever it
changes; each rule fires `times` times (default 1, -1 = always):

  {"method": "GET", "path": "regex", "times": 1, "action": ...}

actions:
  "status"    answer {status, headers, body} without asking upstream
              (the request body is read first)
  "reset"     forward, then send `after` bytes of the response body and
              reset the connection (RST)
  "truncate"  forward, then send `after` bytes and close cleanly (FIN)
              although Content-Length promised more
  "headers"   forward and add `headers` to the response
  "reject_body"  answer `status` when the request carries a body (a
              registry that refuses monolithic uploads), else forward

--log gets one JSON line per request: method, path, length of the request
body, Content-Range, status, and the rule that fired (if any).
"""
import argparse
import http.client
import json
import os
import re
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer",
       "upgrade", "proxy-connection"}


class Rules:
    def __init__(self, path, log):
        self.path = path
        self.logpath = log
        self.mtime = None
        self.rules = []
        self.lock = threading.Lock()

    def match(self, method, path):
        with self.lock:
            try:
                m = os.stat(self.path).st_mtime_ns
            except FileNotFoundError:
                m = None
            if m != self.mtime:
                self.mtime = m
                self.rules = json.load(open(self.path)) if m else []
                for i, r in enumerate(self.rules):
                    r.setdefault("times", 1)
                    r.setdefault("name", "rule%d" % i)
            for r in self.rules:
                if r["times"] == 0:
                    continue
                if r.get("method", method) != method:
                    continue
                if not re.search(r.get("path", ""), path):
                    continue
                if r["times"] > 0:
                    r["times"] -= 1
                return dict(r)
        return None

    def log(self, entry):
        with self.lock:
            with open(self.logpath, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(n) if n else b""

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def handle_any(self):
        st = self.server.rules
        body = self.read_body()
        want = self.headers.get("Content-Length")
        if want is not None and len(body) < int(want):
            # the client gave up mid-body: no rule is spent on it
            st.log({"method": self.command, "path": self.path.split("?")[0],
                    "len": len(body), "aborted": True})
            self.close_connection = True
            return
        rule = st.match(self.command, self.path)
        entry = {"method": self.command, "path": self.path.split("?")[0],
                 "len": len(body),
                 "range": self.headers.get("Content-Range"),
                 "rule": rule["name"] if rule else None}
        action = rule["action"] if rule else None
        if action == "reject_body" and not body:
            action = None
        if action in ("status", "reject_body"):
            data = rule.get("body", "").encode()
            self.send_response(rule.get("status", 503))
            for k, v in rule.get("headers", {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            entry["status"] = rule.get("status", 503)
            st.log(entry)
            return
        up = http.client.HTTPConnection(self.server.upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP and k.lower() != "content-length"}
        if body or self.command in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        up.request(self.command, self.path, body=body or None,
                   headers=headers)
        resp = up.getresponse()
        data = resp.read()
        entry["status"] = resp.status
        st.log(entry)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if action == "headers":
            for k, v in rule.get("headers", {}).items():
                self.send_header(k, v)
        length = resp.getheader("Content-Length")
        if self.command == "HEAD":
            if length is not None:
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        up.close()
        if self.command == "HEAD":
            return
        if action in ("reset", "truncate"):
            self.wfile.write(data[:rule.get("after", len(data) // 2)])
            self.wfile.flush()
            if action == "reset":
                self.reset()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            return
        self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.upstream = args.upstream
    srv.rules = Rules(args.rules, args.log)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
