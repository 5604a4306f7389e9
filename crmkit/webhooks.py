"""Outgoing webhooks: the ``webhook`` action POSTs an event as signed JSON.

Each request carries:

* ``X-Crmkit-Timestamp``: Unix seconds when it was signed;
* ``X-Crmkit-Signature``: ``sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>." + body``
  with the shared secret (the receiver recomputes it and rejects old timestamps);
* ``Idempotency-Key``: ``<event id>:<rule name>``, the same on every retry;
* ``X-Crmkit-Event``: the event's name.

A 2xx answer is success. Anything else, a timeout or a refused connection raises, and the
dispatcher retries with exponential back-off and jitter; on a 429 or 503, a ``Retry-After``
header (seconds or an HTTP date) is honoured as the earliest next attempt. Redirects are not
followed, and the answer's body is never read. After ``events.max_attempts`` the
event is dead for this rule and ``crmkit events retry`` resends it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from crmkit.errors import CrmkitError, Issue

if TYPE_CHECKING:
    from crmkit.app import Crm
    from crmkit.rules import ActionContext

__all__ = ["SCHEMA", "RetryLater", "WebhookFailed", "check_params", "check_url",
           "retry_after_seconds", "send_webhook", "sign"]

USER_AGENT = "crmkit-webhook/0.1"
MAX_RETRY_AFTER = 86400.0
#: Statuses whose ``Retry-After`` sets the earliest next attempt.
RETRY_AFTER_STATUSES = frozenset({429, 503})
#: Headers crmkit sets itself; a rule's ``headers`` may not replace them.
RESERVED_HEADERS = frozenset({
    "content-type", "content-length", "host", "user-agent", "transfer-encoding",
    "x-crmkit-event", "x-crmkit-timestamp", "x-crmkit-signature", "idempotency-key",
})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "secret_env"],
    "properties": {
        # scheme://[userinfo@]host[:port][/path?query#fragment], no white space anywhere.
        "url": {"type": "string", "maxLength": 2000,
                "pattern": "^https?://([^\\s/?#@]+@)?([A-Za-z0-9._~%-]+|\\[[0-9A-Fa-f:.]+\\])"
                           "(:[0-9]{1,5})?([/?#]\\S*)?$"},
        "secret_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
        "headers": {"type": "object", "maxProperties": 50, "additionalProperties": {
            "type": "string", "maxLength": 4000, "pattern": "^[\\x20-\\x7e\\t]*$"}},
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
    """Refuse anything but an absolute http(s) URL with a host (and a valid port)."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError(f"{url!r} is not an http(s) URL: it contains white space or control "
                         "characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"{url!r} is not an http(s) URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")


def check_params(params: Mapping[str, Any], crm: Crm | None = None) -> list[Issue]:
    """Start-up checks of a webhook rule's ``with`` beyond its schema."""
    issues = []
    try:
        check_url(params["url"])
    except ValueError as exc:
        issues.append(Issue("url", str(exc), params["url"]))
    if not _ENV_NAME.fullmatch(params["secret_env"]):
        issues.append(Issue("secret_env", f"{params['secret_env']!r} is not an environment "
                            "variable name", params["secret_env"]))
    for name, value in params.get("headers", {}).items():
        if "\n" in value or "\r" in value:
            issues.append(Issue(f"headers.{name}", "must be one line", value))
        if not _HEADER_NAME.fullmatch(name):
            issues.append(Issue("headers", f"{name!r} is not a header name", name))
        elif name.lower() in RESERVED_HEADERS:
            issues.append(Issue("headers", f"{name!r} is set by crmkit and cannot be "
                                "configured", name))
    return issues


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are in UTC
        when = when.replace(tzinfo=dt.UTC)
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER)


def _shown(url: str) -> str:
    """``url`` for messages and logs: without credentials or a query string."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def _secret(context: ActionContext, name: str) -> str | None:
    return context.crm.config.env.get(name) or os.environ.get(name)


def send_webhook(context: ActionContext, client: httpx.Client | None = None) -> None:
    """The ``webhook`` action."""
    params: Mapping[str, Any] = context.params
    url = params["url"]
    secret = _secret(context, params["secret_env"])
    if not secret:
        raise WebhookFailed(f"rule {context.rule.name!r}: the environment variable "
                            f"{params['secret_env']} holding the webhook secret is not set")
    event = context.event
    body = json.dumps({
        "id": event.id, "name": event.name, "payload": event.payload, "actor": event.actor,
        "created_at": event.created_at.isoformat(), "rule": context.rule.name,
    }, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    timestamp = str(int(time.time()))
    headers = httpx.Headers(dict(params.get("headers", {})))
    # Set after the configured ones: a header of the same name in any case is replaced.
    for name, value in {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Crmkit-Event": event.name,
        "X-Crmkit-Timestamp": timestamp,
        # surrogateescape: the secret's bytes as the environment holds them, whatever they are
        "X-Crmkit-Signature": sign(secret.encode("utf-8", "surrogateescape"), timestamp, body),
        "Idempotency-Key": f"{event.id}:{context.rule.name}",
    }.items():
        headers[name] = value
    timeout = float(params.get("timeout_seconds", 10))
    own_client = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        # Only the status and headers matter: the answer's body is never read.
        with http.stream("POST", url, content=body, headers=headers,
                         timeout=timeout) as response:
            status, retry_after = response.status_code, response.headers.get("Retry-After")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise WebhookFailed(f"POST {_shown(url)} failed: {type(exc).__name__}: "
                            f"{exc}") from None
    finally:
        if own_client:
            http.close()
    if 200 <= status < 300:
        return
    message = f"POST {_shown(url)} answered {status}"
    wait = retry_after_seconds(retry_after) if status in RETRY_AFTER_STATUSES else None
    if wait is not None:
        raise RetryLater(f"{message}; Retry-After {wait:.0f}s", wait)
    raise WebhookFailed(message)
