#!/usr/bin/env python3
"""tcp_listener.py - a loopback TCP listener that counts connections.

Binds 127.0.0.1:0, writes its port to --port-file, and appends one line
"connection" to --log for every connection it accepts (then closes it), so
a test can tell whether anything reached a service on the machine's
loopback interface.
"""
import argparse
import os
import socket


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    while True:
        conn, _ = srv.accept()
        with open(args.log, "a") as f:
            f.write("connection\n")
        conn.close()


if __name__ == "__main__":
    main()
