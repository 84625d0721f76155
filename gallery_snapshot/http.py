"""HTTP plumbing shared by the API client and the downloader: sessions and backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.request import getproxies

import requests
from requests.adapters import HTTPAdapter

from gallery_snapshot import __version__

USER_AGENT = f"gallery-snapshot/{__version__} (+https://github.com/gallery-snapshot)"

Sleep = Callable[[float], None]


def make_session(*, pool_size: int = 10) -> requests.Session:
    """A session with one connection pool sized for ``pool_size`` concurrent requests.

    urllib3's own retries stay off: retrying is decided by the caller, which knows which
    errors are permanent.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # Without proxy variables there is nothing to trust the environment for, and trusting it
    # makes requests re-read them and ~/.netrc on every request (a tenth of download CPU).
    session.trust_env = bool(getproxies())
    return session


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff with jitter: try ``n`` waits ``base * 2**n`` seconds, times 1 to
    ``1 + jitter``, never more than ``cap``."""

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap)
        return min(self.cap, self.base * 2.0**attempt) * (1 + self.jitter * random.random())


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
