#!/usr/bin/env python3
"""redirector.py - an HTTP server that redirects every request elsewhere.

Binds 127.0.0.1:0, writes its port to --port-file, and answers every GET
with "302 Found" to --to followed by the request's path and query, so a
test can tell whether a client follows a redirect to another host.
"""
import argparse
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--to", required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", args.to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
