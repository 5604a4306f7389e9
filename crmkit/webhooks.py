"""Outgoing webhooks: the ``webhook`` action POSTs an event as signed JSON.

Each request carries:

* ``X-Crmkit-Timestamp``: Unix seconds when it was signed;
* ``X-Crmkit-Signature``: ``sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>." + body``
  with the shared secret (the receiver recomputes it and rejects old timestamps);
* ``Idempotency-Key``: ``<event id>:<rule name>``, the same on every retry;
* ``X-Crmkit-Event``: the event's name.

A 2xx answer is success. Anything else, a timeout or a refused connection raises, and the
dispatcher retries with exponential back-off and jitter; a ``Retry-After`` header (seconds
or an HTTP date) is honoured as the earliest next attempt. After ``events.max_attempts`` the
event is dead for this rule and ``crmkit events retry`` resends it.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from crmkit.errors import CrmkitError

if TYPE_CHECKING:
    from crmkit.rules import ActionContext

__all__ = ["SCHEMA", "RetryLater", "WebhookFailed", "send_webhook", "sign"]

USER_AGENT = "crmkit-webhook/0.1"
MAX_RETRY_AFTER = 86400.0

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "secret_env"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://[^\\s/?#]+", "maxLength": 2000},
        "secret_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


class WebhookFailed(CrmkitError):
    """The receiver did not accept the event (the delivery is retried)."""


class RetryLater(WebhookFailed):
    """The receiver asked to wait (``Retry-After``); ``seconds`` is the earliest retry."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.retry_after = seconds


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Crmkit-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER)


def send_webhook(context: ActionContext, client: httpx.Client | None = None) -> None:
    """The ``webhook`` action."""
    params: Mapping[str, Any] = context.params
    secret = os.environ.get(params["secret_env"])
    if not secret:
        raise WebhookFailed(f"rule {context.rule.name!r}: the environment variable "
                            f"{params['secret_env']} holding the webhook secret is not set")
    event = context.event
    body = json.dumps({
        "id": event.id, "name": event.name, "payload": event.payload, "actor": event.actor,
        "created_at": event.created_at.isoformat(), "rule": context.rule.name,
    }, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    timestamp = str(int(time.time()))
    headers = {
        **params.get("headers", {}),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Crmkit-Event": event.name,
        "X-Crmkit-Timestamp": timestamp,
        "X-Crmkit-Signature": sign(secret.encode("utf-8"), timestamp, body),
        "Idempotency-Key": f"{event.id}:{context.rule.name}",
    }
    timeout = float(params.get("timeout_seconds", 10))
    own_client = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        response = http.post(params["url"], content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise WebhookFailed(f"POST {params['url']} failed: {type(exc).__name__}: {exc}") from None
    finally:
        if own_client:
            http.close()
    if 200 <= response.status_code < 300:
        return
    message = f"POST {params['url']} answered {response.status_code}"
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    if wait is not None:
        raise RetryLater(f"{message}; Retry-After {wait:.0f}s", wait)
    raise WebhookFailed(message)
