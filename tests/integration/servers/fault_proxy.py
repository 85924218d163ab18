#!/usr/bin/env python3
"""fault_proxy.py - a fault-injecting HTTP reverse proxy for the tests.

Forwards every request to --upstream (Host header kept, so a registry's
absolute Locations point back at the proxy) unless a rule from --rules
matches first.  The rules file is a JSON list, re-read whenever it
changes; each rule fires `times` times (default 1, -1 = always):

  {"method": "GET", "path": "regex", "times": 1, "action": ...}

("method" may be a list of methods.)

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
  "no_range"  forward without the Range header (a server that ignores
              ranges and answers 200 with the whole body)
  "lose_answer"  forward, then answer `status` (default 500) instead of
              upstream's answer (a request that took effect but whose
              answer was lost)
  "session_fail"  fires once per upload session (the request path without
              its query) on the `nth` (default 1) matching request of that
              session: forwards the first `forward` (a fraction, default 0)
              of the body upstream as a PATCH at the request's
              Content-Range start (0 for a PUT), then answers `status`
              (default 500) -- the registry holds bytes the client never
              heard of.  docker/distribution binds the offset into the
              session's _state query parameter, so from then on the proxy
              puts the newest _state it saw for that session into the
              requests on it, as a registry with a stable session URL would
              accept them (the OCI spec leaves the Location opaque).

--log gets one JSON line per request: method, path, length of the request
body, Content-Range, Range, status, the rule that fired (if any) and, for
session_fail, how many bytes were forwarded.
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
import urllib.parse
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
        self.states = {}  # session path -> newest _state (session_fail)

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
                    r["_seen"] = {}
            for r in self.rules:
                if r["times"] == 0:
                    continue
                m = r.get("method", method)
                if method not in (m if isinstance(m, list) else [m]):
                    continue
                if not re.search(r.get("path", ""), path):
                    continue
                if r.get("action") == "session_fail":
                    key = path.split("?")[0]
                    n = r["_seen"][key] = r["_seen"].get(key, 0) + 1
                    if n != r.get("nth", 1):
                        continue
                if r["times"] > 0:
                    r["times"] -= 1
                return dict(r)
        return None

    def session_query(self, path, query):
        """query with the newest _state seen for session path, if any."""
        with self.lock:
            state = self.states.get(path)
        if state is None:
            return query
        q = [(k, v) for k, v in urllib.parse.parse_qsl(query)
             if k != "_state"]
        return urllib.parse.urlencode(q + [("_state", state)])

    def remember(self, path, location, start=False):
        """Track the newest _state of a session the proxy wrote to
        (start: it just did)."""
        loc = urllib.parse.urlsplit(location or "")
        state = dict(urllib.parse.parse_qsl(loc.query)).get("_state")
        with self.lock:
            if loc.path == path and state and (start or path in self.states):
                self.states[path] = state

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

    def forward_part(self, path, query, data):
        """PATCH data upstream at this request's offset (session_fail)."""
        start = int((self.headers.get("Content-Range") or "0-").split("-")[0])
        headers = {"Host": self.headers.get("Host", ""),
                   "Content-Type": "application/octet-stream",
                   "Content-Range": "%d-%d" % (start, start + len(data) - 1),
                   "Content-Length": str(len(data))}
        if self.headers.get("Authorization"):
            headers["Authorization"] = self.headers["Authorization"]
        q = urllib.parse.urlencode(
            [(k, v) for k, v in urllib.parse.parse_qsl(query)
             if k != "digest"])
        up = http.client.HTTPConnection(self.server.upstream, timeout=120)
        up.request("PATCH", path + ("?" + q if q else ""), body=data,
                   headers=headers)
        resp = up.getresponse()
        resp.read()
        up.close()
        if resp.status != 202:
            raise RuntimeError("forwarded PATCH: %d" % resp.status)
        self.server.rules.remember(path, resp.getheader("Location"), True)

    def handle_any(self):
        st = self.server.rules
        body = self.read_body()
        want = self.headers.get("Content-Length")
        path, _, query = self.path.partition("?")
        if want is not None and len(body) < int(want):
            # the client gave up mid-body: no rule is spent on it
            st.log({"method": self.command, "path": path,
                    "len": len(body), "aborted": True})
            self.close_connection = True
            return
        query = st.session_query(path, query)
        rule = st.match(self.command, self.path)
        entry = {"method": self.command, "path": path,
                 "len": len(body),
                 "range": self.headers.get("Content-Range"),
                 "req_range": self.headers.get("Range"),
                 "rule": rule["name"] if rule else None}
        action = rule["action"] if rule else None
        if action == "reject_body" and not body:
            action = None
        if action == "session_fail":
            n = int(len(body) * float(rule.get("forward", 0)))
            if n:
                self.forward_part(path, query, body[:n])
            entry["forwarded"] = n
            rule.setdefault("status", 500)
        if action in ("status", "reject_body", "session_fail"):
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
        if action == "no_range":
            headers = {k: v for k, v in headers.items()
                       if k.lower() != "range"}
        if body or self.command in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        up.request(self.command, path + ("?" + query if query else ""),
                   body=body or None, headers=headers)
        resp = up.getresponse()
        data = resp.read()
        st.remember(path, resp.getheader("Location"))
        entry["status"] = resp.status
        if action == "lose_answer":
            entry["upstream"] = resp.status
            entry["status"] = rule.get("status", 500)
            st.log(entry)
            self.send_response(entry["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            up.close()
            return
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
