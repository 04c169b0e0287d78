"""Who sent a beacon: bots, device class, and the throttle (its key is not the IP)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from typing import Any

from django.conf import settings as django_settings

# Crawlers and link previewers that run JavaScript or replay beacons. Headless
# Chrome is not listed: synthetic monitoring runs it on purpose.
BOT_PATTERN = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|mediapartners|facebookexternalhit|bingpreview|"
    r"embedly|quora link preview|outbrain|pinterest/|vkshare|w3c_validator|"
    r"lighthouse|pagespeed|chrome-lighthouse|ptst/|gtmetrix|headlesschrome.*\bbot\b",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|(android(?!.*mobile))", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|blackberry|iemobile|opera mini", re.IGNORECASE)


@functools.lru_cache(maxsize=2000)
def _classify(user_agent: str) -> tuple[bool, str]:
    """(is a bot, device class), remembered: a site sees a few hundred distinct agents."""
    bot = bool(user_agent) and BOT_PATTERN.search(user_agent) is not None
    if _TABLET.search(user_agent):
        return bot, "tablet"
    if _MOBILE.search(user_agent):
        return bot, "mobile"
    return bot, "desktop"


def is_bot(user_agent: str) -> bool:
    return _classify(user_agent)[0]


def device_class(user_agent: str) -> str:
    """mobile, tablet or desktop from the User-Agent (Android tablets omit "Mobile")."""
    return _classify(user_agent)[1]


def client_key(ident: str) -> str:
    """A keyed hash of the client address: throttles per client without keeping the address."""
    secret = str(django_settings.SECRET_KEY).encode()
    return hmac.new(secret, ident.encode(), hashlib.sha256).hexdigest()[:24]


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: Any) -> tuple[int, int] | None:
    """(batches, seconds) of a DRF-style rate ("600/min"); None when off or malformed
    (the system check perfmonitor.E008 reports a malformed rate at start-up)."""
    if not rate or not isinstance(rate, str):
        return None
    return _parse_rate_text(rate)


@functools.lru_cache(maxsize=8)
def _parse_rate_text(rate: str) -> tuple[int, int] | None:
    try:
        count, period = rate.split("/")
        return int(count), _PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError, IndexError):
        return None
