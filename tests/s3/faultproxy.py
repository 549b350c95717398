"""A fault-injecting HTTP proxy between cas.h and a real S3 server (tests only).

Each request from the client is read whole, then either forwarded to the
server (and its answer relayed) or met with a fault, by a seeded schedule:

  reset      the connection is reset before any answer
  stall      nothing is sent for `stall` seconds, then the connection closes
  cut        the server's answer is relayed, but its body is cut short
  slowdown   503 SlowDown (S3's throttling answer), without asking the server
  error500   500 InternalError
  expired    400 ExpiredToken ("The provided token has expired.")

The proxy never changes a signed byte: SigV4 covers the method, path, query,
the Host header and the x-amz-* headers, all relayed as they came.

With lie=KIND it is a lying server instead. Every whole-object GET of 1 KB or
more is cut halfway (the proxy keeps the whole answer), so that the client
resumes with Range: bytes=N-, and every ranged GET (relayed as signed: SigV4 and
SharedKey cover Range) is answered with the lie:

  range_from_zero  a 206 with the object from byte 0 and a Content-Range that
                   says so (not the range asked for)
  range_no_header  the same bytes, a 206 without Content-Range
  short206         the server's own 206, one byte shorter than its Content-Range
  etag_change      the server's own 206 with another ETag (a new version)
  consistent       the object from byte 0 under the headers of the range asked
                   for: nothing but a rehash can tell It drops
`Expect: 100-continue` (answering the 100 itself) and asks the server to close
after each answer, so that answers are framed by the server's Content-Length.

    proxy = FaultProxy(("127.0.0.1", 8000), rate=0.3, kinds=("reset", "cut"), seed=1)
    proxy.start()            # a thread with its own event loop; proxy.port
    ...                      # point the client at http://127.0.0.1:<proxy.port>
    proxy.stop()
    proxy.stats              # {"requests": n, "faults": {kind: n}, ...}
    proxy.seen               # (method, path, headers) of every request, for checks
"""

import asyncio
import random
import socket
import struct
import threading

KINDS = ("reset", "stall", "cut", "slowdown", "error500", "expired")
LIES = ("range_from_zero", "range_no_header", "short206", "etag_change", "consistent")

_ERR = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "error500": (500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
    "expired": (400, "Bad Request", "ExpiredToken", "The provided token has expired."),
}


def _s3_error(kind):
    status, reason, code, message = _ERR[kind]
    body = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message>'
            "<RequestId>fault</RequestId></Error>" % (code, message)).encode()
    head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
            % (status, reason, len(body))).encode()
    return head + body


def _headers(head):
    lines = head.split(b"\r\n")
    out = []
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            out.append((k.strip().decode("latin-1").lower(), v.strip().decode("latin-1")))
    return lines[0].decode("latin-1"), out


class FaultProxy:
    def __init__(self, upstream, rate=0.0, kinds=KINDS, seed=1, stall=3.0, record=False, only=None, lie=None,
                 max_run=None):
        assert lie is None or lie in LIES, lie
        # At most max_run faults in a row on one request (method, path, Range): with fewer
        # than the client's tries, a test that must come through does, whatever order
        # concurrent requests arrive in (the seeded schedule follows arrival order).
        self.max_run = max_run
        self._runs = {}
        self.lie = lie
        self.upstream = upstream
        self.rate = rate
        self.kinds = tuple(kinds)
        self.rng = random.Random(seed)
        self.stall = stall
        self.record = record
        self.only = only  # a predicate (method, path) -> bool: faults only where it says so
        self.stats = {"requests": 0, "forwarded": 0, "faults": {k: 0 for k in KINDS}, "lies": 0, "cuts": 0}
        self._whole = {}  # path -> the object's bytes, from its whole GET
        self.seen = []
        self.port = None
        self._loop = None
        self._thread = None
        self._server = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    # ---- control ----------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self):
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for t in asyncio.all_tasks(self._loop):
                t.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    def _pick(self, method, path, hdrs=()):
        with self._lock:
            self.stats["requests"] += 1
            if self.only is not None and not self.only(method, path):
                return None
            key = (method, path, dict(hdrs).get("range"))
            if self.rate and self.rng.random() < self.rate:
                kind = self.rng.choice(self.kinds)
                if self.max_run is None or self._runs.get(key, 0) < self.max_run:
                    self._runs[key] = self._runs.get(key, 0) + 1
                    self.stats["faults"][kind] += 1
                    return kind
            self._runs.pop(key, None)
            return None

    # ---- one client connection ---------------------------------------------

    async def _client(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                first, hdrs = _headers(head[:-4])
                method, path = first.split(" ")[0], first.split(" ")[1]
                length = 0
                expect = False
                for k, v in hdrs:
                    if k == "content-length":
                        length = int(v)
                    elif k == "expect" and v.lower() == "100-continue":
                        expect = True
                if expect:
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                body = await reader.readexactly(length) if length else b""
                if self.record:
                    with self._lock:
                        self.seen.append((method, path, dict(hdrs)))
                kind = self._pick(method, path, hdrs)
                if self.lie and method == "GET" and "?" not in path:  # objects; listings are relayed
                    if not await self._lie(head, path, hdrs, body, writer):
                        writer.close()
                        return
                    continue
                if kind == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.close()
                    return
                if kind == "stall":
                    await asyncio.sleep(self.stall)
                    writer.close()
                    return
                if kind in _ERR:
                    writer.write(_s3_error(kind))
                    await writer.drain()
                    continue
                keep = await self._forward(head, body, method, writer, cut=kind == "cut")
                if not keep:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, OSError):
            try:
                writer.close()
            except Exception:
                pass

    async def _fetch(self, head, body):
        """One request upstream, its whole answer: (status line, [(name, value)], body)."""
        ur, uw = await asyncio.open_connection(*self.upstream)
        lines = head[:-4].split(b"\r\n")
        out = [lines[0]] + [l for l in lines[1:]
                            if l.split(b":", 1)[0].strip().lower() not in (b"expect", b"connection")]
        uw.write(b"\r\n".join(out + [b"Connection: close"]) + b"\r\n\r\n" + body)
        await uw.drain()
        try:
            rhead = await ur.readuntil(b"\r\n\r\n")
            first, rh = _headers(rhead[:-4])
            length = next((int(v) for k, v in rh if k == "content-length"), None)
            data = await ur.readexactly(length) if length else await ur.read()
            return first, rh, data
        finally:
            uw.close()

    async def _lie(self, head, path, hdrs, body, writer):
        """A GET as the lying server answers it; whether the connection stays open."""
        rng = dict(hdrs).get("range", "")
        with self._lock:
            self.stats["forwarded"] += 1
        first, rh, data = await self._fetch(head, body)
        if not first.split(" ")[1].startswith("2"):
            await self._answer(writer, first, rh, data)
            return True
        if not rng.startswith("bytes="):  # a whole object: cut halfway, so that the client resumes
            if len(data) < 1024:
                await self._answer(writer, first, rh, data)
                return True
            with self._lock:
                self.stats["cuts"] += 1
                self._whole[path] = data
            await self._answer(writer, first, rh, data[:len(data) // 2], length=len(data))
            return False
        with self._lock:
            whole = self._whole.get(path)
            self.stats["lies"] += whole is not None or self.lie in ("short206", "etag_change")
        if self.lie == "short206":  # the server's own answer, altered
            await self._answer(writer, first, rh, data[:-1])
            return True
        if self.lie == "etag_change":
            await self._answer(writer, first, [(k, '"another-version"' if k == "etag" else v) for k, v in rh], data)
            return True
        if whole is None:  # nothing to lie with
            await self._answer(writer, first, rh, data)
            return True
        start = int(rng[6:].split("-")[0])
        end = rng[6:].split("-")[1]
        size = len(whole)
        last = min(int(end), size - 1) if end else size - 1
        keep = [(k, v) for k, v in rh if k not in ("content-range", "content-length")]
        if self.lie == "range_from_zero":
            keep.append(("content-range", "bytes 0-%d/%d" % (size - 1, size)))
            data = whole
        elif self.lie == "range_no_header":
            data = whole
        else:  # consistent: the range asked for, in every header; the bytes from 0
            keep.append(("content-range", "bytes %d-%d/%d" % (start, last, size)))
            data = whole[:last - start + 1]
        await self._answer(writer, "HTTP/1.1 206 Partial Content", keep, data)
        return True

    async def _answer(self, writer, first, hdrs, data, length=None):
        """An answer as given: the status line, the headers, Content-Length (the body's,
        or `length` to announce more than is sent), the body."""
        lines = [first] + ["%s: %s" % (k, v) for k, v in hdrs if k not in ("content-length", "connection",
                                                                           "transfer-encoding")]
        lines.append("Content-Length: %d" % (len(data) if length is None else length))
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        await writer.drain()

    async def _forward(self, head, body, method, writer, cut=False):
        """Relays one request and streams its answer back (a large body is never
        held whole, so a client's stall timer sees bytes as the server sends
        them). With cut, the body stops at a random point and the connection
        closes. Returns whether the client's connection may carry another request."""
        ur, uw = await asyncio.open_connection(*self.upstream)
        lines = head[:-4].split(b"\r\n")
        out = [lines[0]]
        for line in lines[1:]:
            low = line.lower()
            if low.startswith(b"expect:") or low.startswith(b"connection:"):
                continue
            out.append(line)
        out.append(b"Connection: close")
        uw.write(b"\r\n".join(out) + b"\r\n\r\n" + body)
        await uw.drain()
        try:
            rhead = await ur.readuntil(b"\r\n\r\n")
            _, rh = _headers(rhead[:-4])
            length = next((int(v) for k, v in rh if k == "content-length"), None)
            chunked = any(k == "transfer-encoding" and "chunked" in v.lower() for k, v in rh)
            framed = method == "HEAD" or length is not None or chunked
            keep_lines = [l for l in rhead[:-4].split(b"\r\n") if not l.lower().startswith(b"connection:")]
            if not framed:
                keep_lines.append(b"Connection: close")
            with self._lock:
                self.stats["forwarded"] += 1
            budget = None
            if cut:
                total = length if length is not None and method != "HEAD" else 0
                budget = self.rng.randrange(0, total) if total > 1 else -1
            if budget == -1:  # nothing to cut short: drop the connection mid-headers instead
                writer.write(rhead[: max(1, len(rhead) // 2)])
                await writer.drain()
                return False
            writer.write(b"\r\n".join(keep_lines) + b"\r\n\r\n")
            sent = 0
            while True:
                chunk = await ur.read(65536)
                if not chunk:
                    break
                if budget is not None and sent + len(chunk) >= budget:
                    writer.write(chunk[: budget - sent])
                    await writer.drain()
                    return False
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
            return framed and budget is None
        finally:
            uw.close()
