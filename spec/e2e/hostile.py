#!/usr/bin/env python3
"""spec/e2e/hostile.py: an HTTP server that misbehaves on purpose, for the end-to-end tests.

Usage: hostile.py [PORT]   (0 or nothing: a free port). Prints "listening on http://127.0.0.1:PORT"
and serves until SIGTERM/SIGINT. The request path picks the misbehaviour:

  /ok          a correct 200 response (keep-alive), to show the server itself works
  /truncated   Content-Length: 100, sends 10 bytes of body, closes
  /badchunk    Transfer-Encoding: chunked, then a chunk size line "zz"
  /garbage     status line "HTTP/1.1 abc"
  /nothttp     "NOTHTTP" instead of a status line
  /bigheaders  a status line followed by 1 MB of headers
  /drip        a valid response sent one byte every DRIP seconds (default 0.5)
  /reset       headers and part of the body, then an RST (SO_LINGER 0, close)
  /silent      reads the request and never answers

Standard library only (socket, threading).
"""
import os
import signal
import socket
import struct
import sys
import threading
import time

DRIP = float(os.environ.get("DRIP", "0.5"))
HOLD = 30.0  # the longest a connection is kept open by /silent and /drip


def read_head(conn):
    """Reads one request head; returns the path, or None when the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    path = parts[1] if len(parts) >= 2 else "/"
    return path.split("?", 1)[0]


def wait_closed(conn, limit=HOLD):
    """Holds the connection until the peer closes it (or `limit` seconds pass)."""
    conn.settimeout(0.2)
    end = time.time() + limit
    while time.time() < end:
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def mode_ok(conn):
    body = b"hello\n"
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True  # keep-alive


def mode_truncated(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")


def mode_badchunk(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    wait_closed(conn, 3)


def mode_garbage(conn):
    conn.sendall(b"HTTP/1.1 abc\r\nContent-Length: 0\r\n\r\n")
    wait_closed(conn, 3)


def mode_nothttp(conn):
    conn.sendall(b"NOTHTTP\r\n\r\n")
    wait_closed(conn, 3)


def mode_bigheaders(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Junk-%06d: " + b"a" * 1000 + b"\r\n"
    block = b"".join(line % i for i in range(1024))  # ~1 MB
    conn.sendall(block + b"Content-Length: 0\r\n\r\n")
    wait_closed(conn, 3)


def mode_drip(conn):
    body = b"x" * 200
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    for i in range(len(resp)):
        conn.sendall(resp[i:i + 1])
        time.sleep(DRIP)


def mode_reset(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000)
    time.sleep(0.05)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def mode_silent(conn):
    wait_closed(conn)


MODES = {
    "/ok": mode_ok, "/truncated": mode_truncated, "/badchunk": mode_badchunk, "/garbage": mode_garbage,
    "/nothttp": mode_nothttp, "/bigheaders": mode_bigheaders, "/drip": mode_drip, "/reset": mode_reset,
    "/silent": mode_silent,
}


def serve(conn):
    try:
        while True:
            path = read_head(conn)
            if path is None:
                break
            fn = MODES.get(path)
            if fn is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            if not fn(conn):
                break
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(512)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("listening on http://127.0.0.1:%d" % srv.getsockname()[1], flush=True)
    try:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
