"""Time-ordered UUIDs (version 7, RFC 9562) so primary-key indexes stay append-only."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence


def uuid7(timestamp_ms: int | None = None) -> uuid.UUID:
    ms = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    return uuid.UUID(bytes=_uuid7_bytes_few((ms,)))


def uuid7_bytes_many(timestamps_ms: Sequence[int]) -> bytes:
    """The 16 bytes of one UUIDv7 per millisecond timestamp, end to end, for bulk writes.

    48-bit milliseconds, version 7, 74 random bits, RFC variant (:func:`uuid7` is one of
    these as a ``UUID``), built for a whole batch at once from one read of the OS's
    random source instead of a read and a ``UUID`` object per row.
    """
    n = len(timestamps_ms)
    if not n:
        return b""
    if n <= _SMALL_BATCH:  # a dozen numpy calls cost more than a few rows' arithmetic
        return _uuid7_bytes_few(timestamps_ms)
    import numpy as np  # here: a web process that writes nothing never loads numpy

    rand = np.frombuffer(os.urandom(10 * n), dtype=np.uint8).reshape(n, 10)
    ms = np.asarray(timestamps_ms, dtype=np.int64).astype(np.uint64) & np.uint64((1 << 48) - 1)
    out = np.empty((n, 16), dtype=np.uint8)
    out[:, :6] = ms.astype(">u8").view(np.uint8).reshape(n, 8)[:, 2:]
    out[:, 6] = 0x70 | (rand[:, 0] & 0x0F)
    out[:, 7] = rand[:, 1]
    out[:, 8] = 0x80 | (rand[:, 2] & 0x3F)
    out[:, 9:] = rand[:, 3:]
    return out.tobytes()


_SMALL_BATCH = 16
_MS_MASK = (1 << 48) - 1


def _uuid7_bytes_few(timestamps_ms: Sequence[int]) -> bytes:
    """The layout of :func:`uuid7_bytes_many`, id by id (no numpy)."""
    rand = os.urandom(10 * len(timestamps_ms))
    parts = []
    for i, ms in enumerate(timestamps_ms):
        r = rand[10 * i:10 * i + 10]
        parts.append((int(ms) & _MS_MASK).to_bytes(6, "big")
                     + bytes((0x70 | r[0] & 0x0F, r[1], 0x80 | r[2] & 0x3F)) + r[3:])
    return b"".join(parts)


def uuid7_hex_many(timestamps_ms: Sequence[int]) -> list[str]:
    """The 32 hex digits of one UUIDv7 per millisecond timestamp (see uuid7_bytes_many)."""
    text = uuid7_bytes_many(timestamps_ms).hex()
    return [text[i:i + 32] for i in range(0, len(text), 32)]
