"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """The HMAC key: base64-decoded after `whsec_` (the Standard Webhooks form), else the secret's UTF-8 bytes.

    Raises ValueError when a `whsec_` secret is not valid base64.
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the subscription secret starts with 'whsec_' but the rest is not valid base64") from None
    return secret.encode("utf-8")


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The value of the `webhook-signature` header for one attempt."""
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(secret: str, webhook_id: str, timestamp: str, body: str, header: str, now: float,
           tolerance: float = 300.0) -> bool:
    """What a receiver checks: one `v1,` signature of the header matches and the timestamp is recent (replays of an
    old request are refused)."""
    try:
        if abs(now - int(timestamp)) > tolerance:
            return False
        expected = sign(secret, webhook_id, int(timestamp), body)
    except ValueError:
        return False
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())
