"""One writer per host: a site's processes hand their requests to one of them.

A flush costs its process a fixed 1-2.5 ms of CPU and its PostgreSQL backend
0.5-1 ms, whatever it carries, and what it allocates slows the process's
serving thread (``benchmarks/overhead/README.md``). With ``SHARED_WRITER`` on
(the default) the background flushers of one site's processes on one host
(gunicorn and Celery prefork workers, runserver, uvicorn workers...) share
that cost:

- **Election.** The first flusher to bind the site's host-local address
  becomes the *writer*: a Linux abstract Unix socket whose name is a hash of
  the user, the settings module, the database perfmonitor writes to and the
  ``PERFMONITOR`` settings, so only processes that would write the same rows
  the same way meet. The kernel frees the name when its holder exits: no file
  to clean up, no stale lock. The others are *senders*.
- **Hand-over.** Once a flush interval a sender sends its plain records (the
  request and query tuples the middleware and the query hook push: the bulk of
  them) in one message, as the frames they wait in (:mod:`perfmonitor.capture.frames`),
  not decoded, and waits for the writer's answer. The writer checks the framing,
  keeps the frames as they came, answers, and decodes and writes them with its
  own in its next flush. Its answer says when that is, and the sender's next
  hand-over is timed just before it, so a record still waits about one flush
  interval in all. Beacons, tasks and journeys are written by their own
  process, as without sharing.
- **Health.** A sender's health row (``MonitorHealth``) goes to the writer too,
  every few seconds in a message of its own, and the writer writes it with its
  own in one statement. A sender that only hands over (no beacons, tasks or
  journeys of its own to write) never opens a database connection: sixteen such
  workers hold one connection for perfmonitor, not sixteen. Refused or
  unanswered, the sender writes its row itself.
- **Falling back.** The writer takes records only while its writes succeed and
  its buffer has room. When it refuses, cannot be reached or does not answer
  within ``IO_TIMEOUT_SECONDS``, the sender writes its records itself, exactly
  as without sharing; a sender whose writer went away tries to become the
  writer at its next flush.
- **Only the same user.** The writer accepts a connection only from a process
  of its own user (``SO_PEERCRED``), who could read and change its memory
  anyway; a message whose frames do not add up to its length closes the
  connection, and a record that is not a tuple is counted and skipped.
- **Counters stay each process's own.** A sender counts a record flushed when
  the writer took it; the writer counts what it takes as ``received``, not as
  captured, and counts as dropped what it took and then lost.
- **What a hard kill loses.** A sender's records wait in it up to one interval,
  then a moment in the writer; killing the writer loses what it holds of every
  process, at most one interval's worth. A clean exit of the writer stops
  taking records, then flushes everything it holds.

Off when ``SHARED_WRITER`` is off, on platforms without abstract sockets, and
when perfmonitor writes to an in-memory SQLite database (each process has its
own).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

from perfmonitor.capture import frames
from perfmonitor.conf import settings

FRAME = struct.Struct("<II")  # a message's lengths: its frames, then its health part
ANSWER = struct.Struct("<cd")  # b"A" taken / b"R" refused, seconds to the writer's next flush
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_HEALTH_BYTES = 16 * 1024  # a sender's health row (capture.health_row.pack_for_writer)
IO_TIMEOUT_SECONDS = 5.0
LEAD_SECONDS = 0.02  # a sender hands over this long before the writer's flush
ELECTION_INTERVAL_SECONDS = 1.0  # between two attempts to find or become the writer
WIRE_VERSION = 4  # part of the address: processes of two record formats never meet


def address() -> bytes | None:
    """This site's host-local writer address, or None when sharing does not apply."""
    if not settings.SHARED_WRITER or not sys.platform.startswith("linux"):
        return None
    from django.conf import settings as django_settings
    from django.db import connections, router

    from perfmonitor.models import MetricRollup

    alias = router.db_for_write(MetricRollup)
    connection = connections[alias]
    db = connection.settings_dict
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        return None
    identity = repr((
        WIRE_VERSION, os.getuid(), getattr(django_settings, "SETTINGS_MODULE", ""),
        db.get("ENGINE"), str(db.get("NAME")), db.get("HOST"), db.get("PORT"), db.get("USER"),
        sorted((str(k), repr(v)) for k, v in getattr(django_settings, "PERFMONITOR", {}).items()),
    ))
    return b"\0perfmonitor." + hashlib.sha256(identity.encode()).hexdigest()[:40].encode()


def _recv_exact(sock: socket.socket, n: int) -> bytearray:
    """n bytes; each wait bounded by the socket's timeout (a stalled peer times out)."""
    data = bytearray(n)
    view = memoryview(data)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise ConnectionError("connection closed")
        got += k
    return data


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()


class Writer:
    """The writer's side: accepts senders and passes their records to ``take``.

    ``room(n)`` answers whether n more records may come (None: refuse) with the
    seconds to the next flush; ``take(frames, n)`` keeps n records as their frames,
    ``take_health(data)`` a sender's health row (``room(0)`` decides whether to take
    one). One daemon thread waits in ``select`` (no GIL held) and wakes only when a
    sender sends.
    """

    def __init__(self, listener: socket.socket, room: Callable[[int], float | None],
                 take: Callable[[bytearray, int], None],
                 take_health: Callable[[bytearray], None] | None = None) -> None:
        self._listener = listener
        self._room = room
        self._take = take
        self._take_health = take_health
        self._selector = selectors.DefaultSelector()
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="perfmonitor-receiver",
                                        daemon=True)

    def start(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._stop_r, selectors.EVENT_READ, "stop")
        self._thread.start()

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop taking records: the address is free for another writer once this returns."""
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                self._stop_w.send(b"x")
            if self._thread is not threading.current_thread():
                self._thread.join(timeout)
        if self._thread.is_alive():
            self._listener.close()  # stuck: at least free the address
        else:
            self.abandon()

    def abandon(self) -> None:
        """Close every socket without waiting for the thread (after fork: it is not ours)."""
        for key in list(self._selector.get_map().values()):
            if key.data == "sender":
                key.fileobj.close()  # type: ignore[union-attr]
        for sock in (self._listener, self._stop_r, self._stop_w):
            sock.close()
        self._selector.close()

    def _run(self) -> None:
        selector = self._selector
        while True:
            for key, _ in selector.select():
                if key.data == "stop":
                    return
                if key.data == "listener":
                    self._accept()
                    continue
                conn: socket.socket = key.fileobj  # type: ignore[assignment]
                if not self._serve(conn):
                    selector.unregister(conn)
                    conn.close()

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        if not _same_user(conn):
            conn.close()
            return
        conn.settimeout(IO_TIMEOUT_SECONDS)
        self._selector.register(conn, selectors.EVENT_READ, "sender")

    def _serve(self, conn: socket.socket) -> bool:
        """Read one message and answer it; False when the connection is done."""
        try:
            size, health_size = FRAME.unpack(_recv_exact(conn, FRAME.size))
            if size > MAX_FRAME_BYTES or health_size > MAX_HEALTH_BYTES:
                return False
            data = _recv_exact(conn, size) if size else bytearray()
            health = _recv_exact(conn, health_size) if health_size else None
        except (OSError, ValueError):
            return False
        n, used = frames.count(data) if size else (0, 0)
        if used != size or not (n or health):
            return False
        if health is not None and self._take_health is None:
            return False
        try:
            delay = self._room(n)
        except Exception:
            delay = None
        try:
            if delay is None:
                conn.sendall(ANSWER.pack(b"R", 0.0))
                return True
            conn.sendall(ANSWER.pack(b"A", delay))
        except OSError:
            return False  # not answered: the sender writes them itself
        if n:
            self._take(data, n)
        if health is not None and self._take_health is not None:
            self._take_health(health)
        return True


class Sharing:
    """One process's part: the writer it is, or its link to the writer, or neither yet."""

    def __init__(self) -> None:
        self.role = ""  # "writer", "sender" or "" (writes alone for now)
        self.writer: Writer | None = None
        self._link: socket.socket | None = None
        self._address: bytes | None = None
        self._next_election = 0.0
        self._closed = False
        self._lock = threading.Lock()  # an election and close() never overlap

    def elect(self, room: Callable[[int], float | None],
              take: Callable[[bytearray, int], None],
              take_health: Callable[[bytearray], None] | None = None) -> str:
        """Find or become this site's writer (at most once a second while neither)."""
        if self.role:
            return self.role
        with self._lock:
            if self._closed:
                return ""
            return self._elect(room, take, take_health)

    def _elect(self, room: Callable[[int], float | None],
               take: Callable[[bytearray, int], None],
               take_health: Callable[[bytearray], None] | None) -> str:
        now = time.monotonic()
        if now < self._next_election:
            return ""
        self._next_election = now + ELECTION_INTERVAL_SECONDS
        if self._address is None:
            self._address = address()
        if self._address is None:
            self._next_election = float("inf")  # sharing does not apply to this process
            return ""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self._address)
            listener.listen(64)
        except OSError:
            listener.close()
        else:
            self.writer = Writer(listener, room, take, take_health)
            self.writer.start()
            self.role = "writer"
            return self.role
        link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        link.settimeout(IO_TIMEOUT_SECONDS)
        try:
            link.connect(self._address)
        except OSError:
            link.close()
            return ""
        self._link = link
        self.role = "sender"
        return self.role

    def hand_over(self, payload: bytes, health: bytes = b"") -> float | None:
        """Send records (whole frames) and/or this process's health row to the writer:
        the seconds to its next flush if it took them, None if it refused or could not
        be reached (then they are still ours to write)."""
        link = self._link
        if (link is None or not (payload or health) or len(payload) > MAX_FRAME_BYTES
                or len(health) > MAX_HEALTH_BYTES):
            return None
        try:
            link.sendall(FRAME.pack(len(payload), len(health)))
            if payload:
                link.sendall(payload)
            if health:
                link.sendall(health)
            status, delay = ANSWER.unpack(_recv_exact(link, ANSWER.size))
        except OSError:
            self._drop_link()
            return None
        return delay if status == b"A" else None

    def _drop_link(self) -> None:
        if self._link is not None:
            self._link.close()
        self._link = None
        self.role = ""
        self._next_election = 0.0  # the writer went away: try to become it at once

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop writing for others (the address is then free) or close the link."""
        with self._lock:
            self._closed = True
            if self.writer is not None:
                self.writer.close(timeout)
                self.writer = None
            self._drop_link()

    def abandon(self) -> None:
        """After fork: close the parent's sockets in this process, touch nothing else."""
        if self.writer is not None:
            self.writer.abandon()
            self.writer = None
        self._drop_link()
