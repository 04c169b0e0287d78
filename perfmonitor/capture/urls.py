"""URL scrubbing: stored URLs keep only allow-listed query parameters, never the fragment."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from perfmonitor.conf import settings

MAX_URL_LENGTH = 2000


def _kept_query(query: str) -> str:
    allowed = settings.URL_QUERY_ALLOWLIST
    if not query or not allowed:
        return ""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in allowed]
    return urlencode(pairs)


def scrub_url(path: str, query_string: str = "") -> str:
    """A server path plus its raw query string -> what may be stored."""
    kept = _kept_query(query_string)
    url = f"{path}?{kept}" if kept else path
    return url[:MAX_URL_LENGTH]


def scrub_absolute_url(url: str) -> str:
    """A browser URL -> scheme://host/path with allow-listed parameters only."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    scrubbed = urlunsplit((parts.scheme, netloc, parts.path, _kept_query(parts.query), ""))
    return scrubbed[:MAX_URL_LENGTH]


def page_of(url: str) -> str:
    """The page a browser URL names, for series dimensions: its path only."""
    try:
        return (urlsplit(url).path or "/")[:255]
    except ValueError:
        return "/"
