"""Server-side capture: middleware, query hook, buffer and flusher.

Public surface: :class:`track` (measure a block or function outside a
request) and :func:`flush_now` (write what is buffered, in this thread).
"""

from perfmonitor.capture.buffer import flush_now
from perfmonitor.capture.tracking import track

__all__ = ["flush_now", "track"]
