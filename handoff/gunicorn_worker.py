"""The web process's gunicorn worker: gevent, with a deadline on reading each request.

With a thread per connection (gthread), ~130 clients that trickle a request line or body
pinned every thread, and signed voice webhooks waited 11-15 s (Twilio gives up at 15 s).
Under gevent a waiting connection costs a greenlet, so a slow client only waits on its own
socket. gunicorn's gevent worker bounds the wait for a request's line and headers by its
`timeout_ctx`; here that bound is WEB_READ_TIMEOUT, and the body gets as long again,
read in full before the app runs, so a client that trickles is disconnected instead of
holding one of the process's WEB_CONNECTIONS slots for ever (tests/test_hardening_server.py).
"""
from __future__ import annotations

import io

import gevent
from gunicorn.glogging import Logger
from gunicorn.workers.ggevent import GeventWorker

from . import shutdown
from .config import Config
from .logs import UNLOGGED_ACCESS

# Bodies the app accepts (app.py: MAX_CONTENT_LENGTH); a longer one is answered 413 by the
# app, which then needs none of it read in advance.
BODY_LIMIT = 1024 * 1024


class BufferedBody:
    """`wsgi.input` for a body read in advance: what was read, then whatever is left."""

    def __init__(self, head: bytes, rest):
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int | None = -1) -> bytes:
        data = self._head.read(size)
        if self._rest is not None and (size is None or size < 0 or len(data) < size):
            more = self._rest.read(-1 if size is None or size < 0 else size - len(data))
            data += more or b""
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = self._head.readline(size)
        if self._rest is not None and not line.endswith(b"\n") and (size is None or size < 0 or len(line) < size):
            line += self._rest.readline(-1 if size is None or size < 0 else size - len(line)) or b""
        return line

    def readlines(self, hint=None) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")


class HeadWithBody:
    """The client's socket as gunicorn writes one response to it: the status line and
    headers are held and go out with the first body bytes, in one send instead of two.

    gunicorn sends a response's head and its body with separate `sendall`s. A long poll's
    answer is ~11 KB sent once per page of events, and the extra send was 9–33 µs of a
    ~480 µs poll in the web process (bench/poll_cost.py, docs/bench.md). Only a final
    answer's head is held, only while nothing else has been sent, and only if it is small
    (`HTTP/1.1 200 OK…`, not `HTTP/1.1 103 Early Hints…`); whatever else gunicorn
    does with the socket (fileno for sendfile, close, shutdown) first sends what is held,
    and so does the end of the request (`flush`), for a response with no body."""

    HEAD_LIMIT = 8192  # a response head is a few hundred bytes; a larger first write is sent as it is

    def __init__(self, sock):
        self._sock = sock
        self._held: bytes | None = None
        self._head_seen = False

    def sendall(self, data) -> None:
        if self._held is not None:
            data, self._held = self._held + bytes(data), None
        elif not self._head_seen and bytes(data[9:10]) != b"1":  # an interim 100 or 103 goes at once
            self._head_seen = True
            if len(data) <= self.HEAD_LIMIT:
                self._held = bytes(data)
                return
        self._sock.sendall(data)

    def flush(self) -> None:
        """Send what is held (a head whose body never came)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._sock.sendall(held)

    def __getattr__(self, name):
        self.flush()
        return getattr(self._sock, name)


class BoundedGeventWorker(GeventWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = Config.from_env().web_read_timeout

    def handle_exit(self, sig, frame):
        shutdown.stopping.set()  # only flagged: the signal handler must not block
        super().handle_exit(sig, frame)

    def timeout_ctx(self):
        # Wraps the wait for each request's line and headers, a kept-alive connection's idle
        # time included (gunicorn's AsyncWorker.handle); past it the connection is closed.
        return gevent.Timeout(self.read_timeout, False)

    def handle_request(self, listener_name, req, sock, addr):
        if req.body is not None:
            if getattr(req, "_expected_100_continue", False):
                # The client sends its body only after this; gunicorn would send it later,
                # when it builds the WSGI environ (gunicorn/http/wsgi.py), so not again.
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                req._expected_100_continue = False
            req.body = self._read_body(req.body)
        response_socket = HeadWithBody(sock)
        try:
            return super().handle_request(listener_name, req, response_socket, addr)
        finally:
            try:
                response_socket.flush()
            except OSError:
                pass  # the client is gone; gunicorn has already handled that

    def _read_body(self, body):
        """The body, read within the deadline; past it, the connection is dropped."""
        try:
            with gevent.Timeout(self.read_timeout):
                head = body.read(BODY_LIMIT + 1)
        except gevent.Timeout:
            self.log.info("a client took over %s s to send a request body; disconnected", self.read_timeout)
            raise StopIteration()  # AsyncWorker.handle: close the connection, no answer
        # Over the limit: the app answers 413 and reads no further than it needs.
        return BufferedBody(head, body if len(head) > BODY_LIMIT else None)


class AccessLogger(Logger):
    """gunicorn's logger, without the access line of a long poll of the event feed that
    web/feed_polls.py answered with 200. Under load a connector polls once per page of 100
    events: 50 connectors at 1,000 handoffs a second are ~1,000 such lines a second, and the
    line cost ~100 µs of the ~560 µs a poll costs the web process (bench/poll_cost.py). The
    polls are still counted in /metrics (`handoff_http_requests_total`); a poll refused or
    failed, or any poll the view answers, keeps its line."""

    def access(self, resp, req, environ, request_time):
        if environ.get(UNLOGGED_ACCESS) and resp.status_code == 200:
            return
        super().access(resp, req, environ, request_time)
