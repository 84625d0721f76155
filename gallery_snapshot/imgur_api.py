"""A small Imgur API client: authentication, the response envelope, error classes, retries
and rate-limit bookkeeping. It knows nothing of galleries; ``sources.imgur`` does."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from urllib3.exceptions import HTTPError

from gallery_snapshot.errors import ApiError, RateLimitExhausted
from gallery_snapshot.escaping import unlinked
from gallery_snapshot.http import (
    DEFAULT_DEADLINE,
    Backoff,
    BodyTooLarge,
    Deadline,
    DeadlineExceeded,
    MalformedResponse,
    Sleep,
    enforce,
    make_session,
    read_body,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

RATE_LIMIT_HEADERS = (
    "X-RateLimit-ClientLimit",
    "X-RateLimit-ClientRemaining",
    "X-RateLimit-UserLimit",
    "X-RateLimit-UserRemaining",
    "X-RateLimit-UserReset",
)
OVER_CAPACITY = "over capacity"
DEFAULT_BACKOFF = Backoff()
# A listing page is tens to hundreds of KB; past this an answer is refused, decoded or not.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


def parse_json(body: bytes) -> Any:
    """``body`` as JSON, or ``ValueError`` saying why not in one line: invalid JSON or UTF-8,
    a number too long to convert, nesting too deep for the parser."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as exc:
        text = " ".join(str(exc).split())
        raise ValueError(text if len(text) <= 200 else text[:197] + "...") from None


def error_text(body: bytes, *, fallback: str) -> str:
    """The error message of an Imgur error body, in either of its two shapes."""
    try:
        answer = parse_json(body)
    except ValueError:
        return fallback
    if isinstance(answer, dict):
        data = answer.get("data")
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return str(data["error"])
        errors = answer.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("detail") or errors[0].get("status") or "error")
    return fallback


def is_transient(status: int, message: str) -> bool:
    """Whether retrying a failed API response can help."""
    if status == 429 or status >= 500:
        return True
    return status == 403 and OVER_CAPACITY in message.lower()


class ImgurClient:
    """GETs Imgur API paths and returns the envelope's ``data``.

    Transient failures (5xx, 429, over capacity, connection errors, timeouts) are retried with
    backoff, honouring ``Retry-After``; permanent ones raise ``ApiError`` after one request:
    so do an answer that outlives ``deadline`` (however slowly its bytes trickle), one over
    ``max_bytes`` (on the wire or decoded) and one that is not JSON. The client id goes into
    the ``Authorization`` header only, never into a message.
    """

    def __init__(
        self,
        api_url: str,
        client_id: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        deadline: float = DEFAULT_DEADLINE,
        max_bytes: int = MAX_ANSWER_BYTES,
        attempts: int = 4,
        backoff: Backoff = DEFAULT_BACKOFF,
        sleep: Sleep = time.sleep,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        """``before_request`` runs before every request that is sent: the seam for a rate
        limit shared by every run (the flow plugs Prefect's global rate limit in here)."""
        self.api_url = api_url.rstrip("/")
        self._before_request = before_request
        self._auth = f"Client-ID {client_id}"
        self._session = session or make_session(pool_size=2)
        self._timeout = timeout
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep
        self.rate_limits: dict[str, int] = {}

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        self._refuse_when_spent(path)
        url = f"{self.api_url}/{path.lstrip('/')}"
        failure = "no attempt made"
        for attempt in range(self._attempts):
            retry_after: float | None = None
            if self._before_request is not None:
                self._before_request()
            try:
                response, body = self._exchange(url, params, path)
            except (requests.RequestException, HTTPError, MalformedResponse) as exc:
                failure = f"{type(exc).__name__} while requesting /{path.lstrip('/')}"
            else:
                self._note_rate_limits(response)
                if response.status_code == 200:
                    return self._data(body, path)
                # The server's words end in logs and in the one-line error: made safe for both.
                message = unlinked(
                    error_text(body, fallback=response.reason or f"HTTP {response.status_code}")
                )
                failure = f"HTTP {response.status_code} from /{path.lstrip('/')}: {message}"
                if not is_transient(response.status_code, message):
                    raise self._permanent_error(response.status_code, message, path)
                self._refuse_when_spent(path)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt + 1 < self._attempts:
                delay = self._backoff.delay(attempt, retry_after=retry_after)
                logger.warning("API request failed (%s); retrying in %.1f s", failure, delay)
                self._sleep(delay)
        raise ApiError(
            f"the API at {self.api_url} kept failing after {self._attempts} attempts ({failure})",
            permanent=False,
        )

    def _exchange(
        self, url: str, params: dict[str, str] | None, path: str
    ) -> tuple[requests.Response, bytes]:
        """One GET and its whole body, within the deadline and the size cap (as images are:
        the deadline's watchdog cuts a trickling answer, see ``http.Deadline``)."""
        with enforce(Deadline(self._deadline)) as deadline:
            try:
                with self._session.get(
                    url,
                    params=params,
                    headers={"Authorization": self._auth},
                    timeout=deadline.timeout(self._timeout),
                    stream=True,
                ) as response:
                    chunks = read_body(response.raw, max_bytes=self._max_bytes, deadline=deadline)
                    return response, b"".join(chunks)
            except BodyTooLarge:
                raise ApiError(
                    f"/{path.lstrip('/')} answered more than {self._max_bytes} bytes"
                ) from None
            except (DeadlineExceeded, requests.RequestException, HTTPError, MalformedResponse):
                if not deadline.expired:
                    raise
                raise ApiError(
                    f"/{path.lstrip('/')} did not answer in time ({deadline.error()})"
                ) from None

    def _data(self, body: bytes, path: str) -> Any:
        try:
            answer = parse_json(body)
        except ValueError as exc:
            raise ApiError(f"/{path.lstrip('/')} did not answer with JSON ({exc})") from None
        if not isinstance(answer, dict) or "data" not in answer:
            raise ApiError(f"/{path.lstrip('/')} answered without the data envelope")
        return answer["data"]

    def _permanent_error(self, status: int, message: str, path: str) -> ApiError:
        if status == 403:
            return ApiError(
                f"the API rejected the client id ({message}): check IMGUR_CLIENT_ID", status=status
            )
        if status == 404:
            return ApiError(f"the API has nothing at /{path.lstrip('/')} (404)", status=status)
        return ApiError(f"HTTP {status} from /{path.lstrip('/')}: {message}", status=status)

    def credits_summary(self) -> str:
        """``client 12490/12500, user 1990/2000``: the credits the last response reported."""
        parts = []
        for kind in ("Client", "User"):
            remaining = self.rate_limits.get(f"X-RateLimit-{kind}Remaining")
            limit = self.rate_limits.get(f"X-RateLimit-{kind}Limit")
            if remaining is not None:
                parts.append(f"{kind.lower()} {remaining}/{limit if limit is not None else '?'}")
        return ", ".join(parts) or "not reported"

    def _note_rate_limits(self, response: requests.Response) -> None:
        for header in RATE_LIMIT_HEADERS:
            value = response.headers.get(header, "")
            if value.lstrip("-").isdigit():
                self.rate_limits[header] = int(value)
        remaining = self.rate_limits.get("X-RateLimit-ClientRemaining")
        limit = self.rate_limits.get("X-RateLimit-ClientLimit")
        if remaining is not None and limit and remaining < limit // 10:
            logger.warning("Imgur API credits low: %d of %d left for this client", remaining, limit)
        else:
            logger.debug("Imgur rate limits: %s", self.rate_limits)

    def _refuse_when_spent(self, path: str) -> None:
        for kind in ("Client", "User"):
            if self.rate_limits.get(f"X-RateLimit-{kind}Remaining") == 0:
                raise RateLimitExhausted(
                    f"Imgur API credits are spent ({kind.lower()} limit); not requesting "
                    f"/{path.lstrip('/')}: try again after the limit resets",
                    status=429,
                )
