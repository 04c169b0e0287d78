"""WSGI entry of the benchmark server.

Python threads get their name as the OS thread name too (Linux ``prctl``), so that the
benchmark can read the flusher thread's CPU time from /proc apart from the request
threads. (Python 3.11 does not name OS threads; nothing else changes.)
"""

import ctypes
import os
import threading

from django.core.wsgi import get_wsgi_application

PR_SET_NAME = 15


def _name_os_threads() -> None:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def named_bootstrap(self: threading.Thread) -> None:
        prctl(PR_SET_NAME, self.name.encode()[:15], 0, 0, 0)
        bootstrap(self)

    threading.Thread._bootstrap_inner = named_bootstrap  # type: ignore[attr-defined]


_name_os_threads()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.collect.settings")
application = get_wsgi_application()
