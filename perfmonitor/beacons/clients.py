"""Who sent a beacon: bots, device class, and a throttle key that is not the IP."""

from __future__ import annotations

import hashlib
import hmac
import re

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


def is_bot(user_agent: str) -> bool:
    return bool(user_agent) and BOT_PATTERN.search(user_agent) is not None


def device_class(user_agent: str) -> str:
    """mobile, tablet or desktop from the User-Agent (Android tablets omit "Mobile")."""
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def client_key(ident: str) -> str:
    """A keyed hash of the client address: throttles per client without keeping the address."""
    secret = str(django_settings.SECRET_KEY).encode()
    return hmac.new(secret, ident.encode(), hashlib.sha256).hexdigest()[:24]
