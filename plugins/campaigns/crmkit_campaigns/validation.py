"""Parsing and checking of the values users give: money, times, codes.

Each checker appends :class:`~crmkit.Issue` objects to a list instead of raising, so one
bad command or record reports every problem at once.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from crmkit import Issue
from crmkit.currencies import CURRENCIES

__all__ = ["CODE", "code", "currency", "money", "money_text", "time"]

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def money(issues: list[Issue], path: str, value: Any, *, required: bool = False
          ) -> Decimal | None:
    """A non-negative amount with at most 4 decimal places (never a float)."""
    if value is None or value == "":
        if required:
            issues.append(Issue(path, "is required"))
        return None
    if isinstance(value, (float, bool)):
        issues.append(Issue(path, "must be a decimal number written as text, not a float",
                            value))
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        issues.append(Issue(path, f"{value!r} is not a number", value))
        return None
    if not amount.is_finite() or amount < 0:
        issues.append(Issue(path, "must be a finite amount of at least 0", value))
        return None
    if amount != amount.quantize(Decimal("0.0001")):
        issues.append(Issue(path, "has more than 4 decimal places", value))
        return None
    return amount


def currency(issues: list[Issue], path: str, value: Any) -> str | None:
    """An ISO 4217 currency code."""
    if not isinstance(value, str) or value not in CURRENCIES:
        issues.append(Issue(path, f"{value!r} is not an ISO 4217 currency code (EUR, USD, ...)",
                            value))
        return None
    return value


def time(issues: list[Issue], path: str, value: Any) -> dt.datetime | None:
    """An aware time: a datetime, an ISO 8601 text with offset, or a date (midnight UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            issues.append(Issue(path, "needs a time zone offset", value.isoformat()))
            return None
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(dt.UTC)
    issues.append(Issue(path, "must be an ISO 8601 date (2026-12-01) or a time with offset "
                        "(2026-12-01T09:00:00+02:00)", value))
    return None


def code(issues: list[Issue], path: str, value: Any) -> str | None:
    """A code: letters, digits, ``_ . -``, at most 40 characters."""
    if not isinstance(value, str) or not CODE.match(value):
        issues.append(Issue(path, "must be 1-40 letters, digits, '_', '.' or '-', starting "
                            "with a letter or digit", value))
        return None
    return value


def money_text(amount: Decimal | None) -> str | None:
    """An amount as text with cents (``1500.00``), or all its places if it has more."""
    if amount is None:
        return None
    cents = amount.quantize(Decimal("0.01"))
    return str(cents if cents == amount else amount.normalize())
