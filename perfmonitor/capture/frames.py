"""Records as bytes: a ``marshal`` frame behind its length, many to a ``bytearray``.

Plain tuples (the middleware's requests, the query hook's stray queries) wait in
the buffer as frames, and a sender hands its frames to the host's writer as they
are (:mod:`perfmonitor.capture.sharing`). One frame is a 4-byte little-endian
length, then ``marshal.dumps(record, VERSION)``.
"""

from __future__ import annotations

import marshal
import struct
from typing import Any

HEADER = struct.Struct("<I")
VERSION = 4
header = HEADER.pack
dumps = marshal.dumps


def encode(records: list[tuple[Any, ...]]) -> bytes:
    """Records as frames, one after the other (what the buffer builds one at a time)."""
    return b"".join(header(len(data)) + data
                    for data in (dumps(record, VERSION) for record in records))


def decode(data: bytes, limit: int) -> tuple[list[tuple[Any, ...]], int, int]:
    """Up to ``limit`` records from the start of ``data``: (records, bytes read, frames
    that were not a tuple in marshal's format and were skipped)."""
    records: list[tuple[Any, ...]] = []
    unpack, loads, size_of = HEADER.unpack_from, marshal.loads, HEADER.size
    offset, end, bad = 0, len(data), 0
    with memoryview(data) as view:
        while offset < end and len(records) < limit:
            (size,) = unpack(data, offset)
            offset += size_of
            try:
                record = loads(view[offset:offset + size])
            except (ValueError, EOFError, TypeError):
                record = None
            offset += size
            if type(record) is tuple:
                records.append(record)
            else:
                bad += 1
    return records, offset, bad


def count(data: bytes | bytearray, limit: int | None = None,
          max_bytes: int | None = None) -> tuple[int, int]:
    """(frames, bytes they take) from the start of ``data``: at most ``limit`` frames
    taking at most ``max_bytes``.

    The bytes are less than ``len(data)`` when a limit stopped the count, or when
    the data ends in the middle of a frame (which is not counted).
    """
    unpack, size_of = HEADER.unpack_from, HEADER.size
    offset, n = 0, 0
    end = len(data) if max_bytes is None else min(len(data), max_bytes)
    while offset + size_of <= end and (limit is None or n < limit):
        (size,) = unpack(data, offset)
        if offset + size_of + size > end:
            break
        offset += size_of + size
        n += 1
    return n, offset
