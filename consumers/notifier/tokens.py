"""Signed user tokens for the push stream: `v1.<user b64>.<expiry>.<HMAC-SHA256 b64>`, bound to one user id.

The app's backend mints a token for its logged-in user; the browser passes it when opening the stream
(EventSource cannot set headers, so it travels in the query). No one can read another user's stream.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

VERSION = "v1"
# Seconds since the epoch as ASCII digits, canonical (no leading zero), at most 12 of them (year 33658):
# str.isdigit() also accepts '²' or Arabic-Indic digits, and int() of thousands of digits raises.
EXPIRY = re.compile(r"[1-9][0-9]{0,11}", re.ASCII)


class TokenError(ValueError):
    """The token is missing, malformed, forged, expired, or for another user; `status` is the HTTP answer."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, user_id: str, expires_at: int) -> bytes:
    message = f"{VERSION}|{user_id}|{expires_at}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def mint_user_token(secret: str, user_id: str, ttl_s: int, now: float | None = None) -> str:
    expires_at = int((time.time() if now is None else now) + ttl_s)
    return ".".join((VERSION, _b64(user_id.encode()), str(expires_at), _b64(_signature(secret, user_id, expires_at))))


def verify_user_token(secret: str, token: str | None, user_id: str, now: float | None = None) -> int:
    """Raise `TokenError` unless `token` is a valid, unexpired token for exactly `user_id`; return its expiry.

    The expiry (seconds since the epoch) is when a stream opened with this token must end.
    """
    if not token:
        raise TokenError("missing token")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION or not EXPIRY.fullmatch(parts[2]):
        raise TokenError("malformed token")
    try:
        token_user = _unb64(parts[1]).decode()
        presented = _unb64(parts[3])
        wanted = user_id.encode()
    except (ValueError, UnicodeError) as error:  # binascii.Error and the codec errors are ValueErrors too
        raise TokenError("malformed token") from error
    expires_at = int(parts[2])
    if not hmac.compare_digest(presented, _signature(secret, token_user, expires_at)):
        raise TokenError("bad signature")
    if expires_at < (time.time() if now is None else now):
        raise TokenError("token expired")
    if not hmac.compare_digest(token_user.encode(), wanted):
        raise TokenError("token is for another user", status=403)
    return expires_at
