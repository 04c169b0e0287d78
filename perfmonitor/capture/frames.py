"""Records as bytes: ``marshal`` frames behind a small header, many to a ``bytearray``.

Plain tuples (the middleware's requests, the query hook's stray queries) wait in
the buffer as frames, and a sender hands its frames to the host's writer as they
are (:mod:`perfmonitor.capture.sharing`). One frame is an 8-byte header, the
length of its data and how many records it holds (both unsigned 32-bit, little
endian), then ``marshal.dumps(data, VERSION)`` of one record (a tuple) or of a
list of records (a chunk).

A chunk is one frame, not one per record, because marshal writes an object that
a frame holds twice only once, and refers back to it after that: the requests of
one chunk share their statements (the query hook interns them), their method,
route and view names (the route cache's), so a 10-query request takes about 240
bytes in a chunk against 1,540 alone, and decoding makes each shared string once
per chunk instead of once per request (the strings the flusher then groups by
are the same objects, compared by identity).
"""

from __future__ import annotations

import marshal
import struct
from typing import Any

HEADER = struct.Struct("<II")
VERSION = 4
header = HEADER.pack
dumps = marshal.dumps


def frame(records: list[tuple[Any, ...]]) -> bytes:
    """One frame holding ``records``. Raises ValueError when marshal cannot carry
    one of their values."""
    data = dumps(records[0] if len(records) == 1 else records, VERSION)
    return header(len(data), len(records)) + data


def encode(records: list[tuple[Any, ...]]) -> bytes:
    """Records as frames of one record each, one after the other."""
    return b"".join(frame([record]) for record in records)


def decode(data: bytes, limit: int) -> tuple[list[tuple[Any, ...]], int, int]:
    """Whole frames from the start of ``data`` until they hold ``limit`` records or
    more: (records, bytes read, records that were not a tuple in marshal's format
    and were skipped).

    What a frame holds is counted by its header: records plus skipped ones always
    add up to the headers' counts (a frame holding more tuples than its header
    says gives only that many).
    """
    records: list[tuple[Any, ...]] = []
    unpack, loads, size_of = HEADER.unpack_from, marshal.loads, HEADER.size
    offset, end, bad = 0, len(data), 0
    with memoryview(data) as view:
        while offset < end and len(records) + bad < limit:
            size, n = unpack(data, offset)
            offset += size_of
            try:
                held = loads(view[offset:offset + size])
            except (ValueError, EOFError, TypeError):
                held = None
            offset += size
            if type(held) is tuple:
                held = [held]
            elif type(held) is not list:
                bad += n
                continue
            good = [record for record in held[:n] if type(record) is tuple]
            records.extend(good)
            bad += n - len(good)
    return records, offset, bad


def count(data: bytes | bytearray, limit: int | None = None,
          max_bytes: int | None = None) -> tuple[int, int]:
    """(records, bytes their frames take) of the whole frames at the start of
    ``data``, taken until they hold ``limit`` records or more, within ``max_bytes``.

    The bytes are less than ``len(data)`` when a limit stopped the count, when the
    data ends in the middle of a frame, or at a header that no frame has (no record,
    or more records than bytes): that frame and what follows are not counted.
    """
    unpack, size_of = HEADER.unpack_from, HEADER.size
    offset, n = 0, 0
    end = len(data) if max_bytes is None else min(len(data), max_bytes)
    while offset + size_of <= end and (limit is None or n < limit):
        size, held = unpack(data, offset)
        if offset + size_of + size > end or not 0 < held <= size:
            break  # cut short, or a header no frame of ours has (a record takes bytes)
        offset += size_of + size
        n += held
    return n, offset
