"""`WebhookSender`: POST a pushed notification to the configured URL, signed, with retries and backoff.

Signature header: `X-Streamrec-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
timestamp in `X-Streamrec-Timestamp`, so a receiver can check authenticity and refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return timestamp.isdigit() and hmac.compare_digest(sign(secret, int(timestamp), body), header)


@dataclass(frozen=True)
class WebhookResult:
    delivered: bool
    attempts: int
    last_error: str | None = None


class WebhookSender:
    def __init__(
        self,
        url: str,
        secret: str | None,
        max_attempts: int,
        backoff_s: float,
        backoff_max_s: float,
        timeout_s: float,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.sleep = sleep
        self.client = client or httpx.Client(timeout=timeout_s)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.backoff_max_s)
        base = min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s)
        return base * random.uniform(0.8, 1.2)  # jitter spreads retries of many notifications  # noqa: S311

    def send(self, notification_id: str, body: bytes) -> WebhookResult:
        """Deliver or give up after `max_attempts`; 4xx answers other than throttling are final."""
        error: str | None = None
        for attempt in range(1, self.max_attempts + 1):
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-Streamrec-Notification-Id": notification_id,
                "X-Streamrec-Timestamp": str(timestamp),
                "X-Streamrec-Attempt": str(attempt),
            }
            if self.secret:
                headers["X-Streamrec-Signature"] = sign(self.secret, timestamp, body)
            retry_after = None
            try:
                response = self.client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    return WebhookResult(True, attempt)
                error = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE_STATUS:
                    break
                retry_after = response.headers.get("retry-after")
            except httpx.HTTPError as exc:
                error = repr(exc)
            if attempt < self.max_attempts:
                delay = self._delay(attempt, retry_after)
                log.info("webhook %s attempt %d failed (%s), retrying in %.2fs", notification_id, attempt, error, delay)
                self.sleep(delay)
        log.error("webhook gave up on notification %s after %d attempts: %s", notification_id, attempt, error)
        return WebhookResult(False, attempt, error)

    def close(self) -> None:
        self.client.close()
