#!/usr/bin/env python3
"""hostile_client.py - the hostile clients of the server tests and of
bench/flood.sh, over plain sockets (curl cannot hold a body open or bind
many source addresses).

  conns HOST PORT N [--source ADDR]
      open N connections one after the other, each sending a request
      that keeps it open (an API call without a token: 401), and kept
      open once answered; prints "answered A closed C": how many
      got an HTTP answer and how many were closed without one.
  slow HOST PORT PATH [--clients N] [--length BYTES] [--rate BYTES_PER_S]
       [--duration S] [--source ADDR[,ADDR...]] [--reconnect]
      N clients each POST a body of Content-Length BYTES (zeros) with a
      bad GitHub signature, trickling RATE bytes per second, until the
      server answers or closes, or DURATION seconds have passed; with
      --reconnect a client starts again after each answer until then.
      Prints "STATUS COUNT" lines (status "closed" when the server closed
      without an answer, "unfinished" when the time ran out first).
"""
import argparse
import collections
import socket
import sys
import threading
import time


# Answered once the (empty) body is in, so the connection stays open
# (an answer given before the body, as to GET /healthz, closes it).
KEEP_ALIVE_REQUEST = (b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 0\r\n\r\n")


def connect(host, port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


def status_of(data):
    """The status code of an HTTP response's first line, or None."""
    line = data.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return line[1].decode()
    return None


def read_answer(s, timeout):
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    return status_of(data)


def cmd_conns(a):
    """One connection after the other, each kept open once answered."""
    socks = []
    answered = closed = 0
    for _ in range(a.n):
        s = connect(a.host, a.port, a.source)
        socks.append(s)
        try:
            s.sendall(KEEP_ALIVE_REQUEST)
        except OSError:
            pass
        if read_answer(s, 5):
            answered += 1
        else:
            closed += 1
    for s in socks:
        s.close()
    print("answered %d closed %d" % (answered, closed))


def one_slow(a, source, deadline):
    """One request; returns its outcome."""
    try:
        s = connect(a.host, a.port, source)
    except OSError:
        return "refused"
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "X-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\n"
            "X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n"
            % (a.path, "0" * 64, a.length)).encode()
    step = max(1, a.rate // 10)
    sent = 0
    try:
        s.sendall(head)
        s.setblocking(False)
        while time.monotonic() < deadline:
            try:
                data = s.recv(4096)
                s.setblocking(True)
                st = status_of(data) if data else None
                return st or "closed"
            except BlockingIOError:
                pass
            if sent < a.length:
                n = min(step, a.length - sent)
                s.send(b"0" * n)
                sent += n
            time.sleep(0.1)
        return "unfinished"
    except OSError:
        return "closed"
    finally:
        s.close()


def cmd_slow(a):
    deadline = time.monotonic() + a.duration
    sources = a.source.split(",") if a.source else [None]
    counts = collections.Counter()
    lock = threading.Lock()

    def client(i):
        src = sources[i % len(sources)]
        while True:
            out = one_slow(a, src, deadline)
            with lock:
                counts[out] += 1
            if not a.reconnect or time.monotonic() >= deadline:
                return
            time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in sorted(counts):
        print(k, counts[k])
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("conns")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("n", type=int)
    c.add_argument("--source")
    s = sub.add_parser("slow")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("path")
    s.add_argument("--clients", type=int, default=1)
    s.add_argument("--length", type=int, default=1 << 20)
    s.add_argument("--rate", type=int, default=1024)
    s.add_argument("--duration", type=float, default=30)
    s.add_argument("--source")
    s.add_argument("--reconnect", action="store_true")
    a = p.parse_args()
    if a.cmd == "conns":
        cmd_conns(a)
    else:
        cmd_slow(a)


if __name__ == "__main__":
    main()
