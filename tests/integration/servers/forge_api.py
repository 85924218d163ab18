#!/usr/bin/env python3
"""forge_api.py - a stand-in for the commit status endpoints of GitHub,
GitLab and Gitea for the tests.

Answers every POST with 201 and a small JSON object, after appending one
JSON line to --log: {"method", "path", "headers": {lowercase name: value},
"body": parsed JSON (or the raw text), "answer": status or "hang"}.  The
line is written before the answer, so a test sees a request that hangs.

--rule REGEX:ACTION:N (repeatable) changes the answer for the requests
whose path matches REGEX, the first N of them (-1: all):
  ACTION 503   answer 503 with "Retry-After: 1"
  ACTION hang  answer nothing for 60 seconds (the client's timeout fires)
Test-only: plain HTTP on 127.0.0.1, no authentication checked.
"""
import argparse
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Rule:
    def __init__(self, spec):
        pattern, action, times = spec.rsplit(":", 2)
        self.pattern = re.compile(pattern)
        self.action = action
        self.left = int(times)


class Forge:
    def __init__(self, args):
        self.log_path = args.log
        self.rules = [Rule(r) for r in args.rule or []]
        self.lock = threading.Lock()

    def answer_for(self, path):
        """The rule's action for this request (using up one), or 201."""
        with self.lock:
            for rule in self.rules:
                if rule.left != 0 and rule.pattern.search(path):
                    if rule.left > 0:
                        rule.left -= 1
                    return rule.action
        return 201

    def record(self, entry):
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        forge = self.server.forge
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        action = forge.answer_for(self.path)
        forge.record({"method": "POST", "path": self.path,
                      "headers": {k.lower(): v for k, v in self.headers.items()},
                      "body": body, "answer": action})
        if action == "hang":
            time.sleep(60)
            return
        status = int(action)
        reply = json.dumps({"id": 1, "state": body.get("state")
                            if isinstance(body, dict) else None}).encode()
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rule", action="append")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.forge = Forge(args)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
