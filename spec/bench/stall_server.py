#!/usr/bin/env python3
"""`make bench`, coordinated omission: an HTTP/1.1 keep-alive server on loopback that answers every
request at once, except during one window of STALL seconds starting AT seconds after the first
request it sees: requests that arrive in the window (or are queued behind one on their connection)
get their answer when the window ends. Prints its port, then, on SIGTERM, the window's times and how
many answers it held back.

    stall_server.py [--at 5] [--stall 1]
"""
import argparse
import asyncio
import signal
import socket
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


class Stall:
    """The one window: it opens `at` seconds after the first request and lasts `length` seconds."""

    def __init__(self, loop, at, length):
        self.loop, self.at, self.length = loop, at, length
        self.start = self.end = None  # loop times, set by the first request
        self.held = []  # connections with answers waiting for the window's end, in order
        self.held_answers = 0

    def first_request(self):
        if self.start is None:
            self.start = self.loop.time() + self.at
            self.end = self.start + self.length
            self.loop.call_at(self.end, self.release)

    def stalled(self):
        return self.start is not None and self.start <= self.loop.time() < self.end

    def release(self):
        held, self.held = self.held, []
        for conn in held:
            conn.flush()


class Conn(asyncio.Protocol):
    def __init__(self, stall):
        self.stall, self.buf, self.pending, self.transport = stall, b"", 0, None

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")  # requests without a body: GET
        if n == 0:
            return
        self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
        self.stall.first_request()
        if self.stall.stalled() or self.pending:
            if not self.pending:
                self.stall.held.append(self)
            self.pending += n
            self.stall.held_answers += n
        else:
            self.transport.write(RESPONSE * n)

    def flush(self):
        if self.transport and not self.transport.is_closing():
            self.transport.write(RESPONSE * self.pending)
        self.pending = 0

    def connection_lost(self, exc):
        self.transport = None


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--at", type=float, default=5.0, help="seconds from the first request to the stall")
    ap.add_argument("--stall", type=float, default=1.0, help="how long the stall lasts, seconds")
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    stall = Stall(loop, args.at, args.stall)
    server = await loop.create_server(lambda: Conn(stall), "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, done.set_result, None)
    loop.add_signal_handler(signal.SIGINT, done.set_result, None)
    await done
    if stall.start is not None:
        wall = time.time() - loop.time()
        print(f"stalled from {stall.start + wall:.3f} to {stall.end + wall:.3f}, "
              f"{stall.held_answers} answers held", file=sys.stderr, flush=True)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
