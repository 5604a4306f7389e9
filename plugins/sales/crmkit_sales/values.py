"""Checking and converting input values: money, currencies, dates, text.

Every function raises :class:`crmkit.ValidationError` naming the field, so a bad value is
refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from crmkit import Issue, ValidationError
from crmkit.currencies import CURRENCIES

__all__ = ["check_choice", "currency", "date", "email", "fmt", "moment", "money", "positive_id",
           "text"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _fail(field: str, message: str, value: Any = None) -> ValidationError:
    return ValidationError([Issue(field, message, value)])


def money(field: str, value: Any, *, allow_zero: bool = True) -> Decimal:
    """A non-negative exact amount with at most 4 decimal places; floats are refused."""
    if isinstance(value, (float, bool)):
        raise _fail(field, f"must be a decimal number given as text or Decimal, got {value!r}",
                    value)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _fail(field, f"{value!r} is not a number", value) from None
    if not amount.is_finite():
        raise _fail(field, f"{value!r} is not a finite number", value)
    if amount < 0:
        raise _fail(field, f"must not be negative, got {amount}", value)
    if not allow_zero and amount == 0:
        raise _fail(field, "must be greater than zero", value)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise _fail(field, f"{amount} has more than 4 decimal places", value)
    if abs(amount) >= Decimal(10) ** 14:
        raise _fail(field, f"{amount} is too large", value)
    return amount


def currency(value: Any, field: str = "currency") -> str:
    """An ISO 4217 code (``eur`` is accepted as ``EUR``)."""
    code = value.strip().upper() if isinstance(value, str) else value
    if not isinstance(code, str) or code not in CURRENCIES:
        raise _fail(field, f"{value!r} is not an ISO 4217 currency code", value)
    return code


def date(field: str, value: Any) -> dt.date:
    """A calendar date: a :class:`datetime.date` or ``YYYY-MM-DD`` text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(field, f"{value!r} is not a date (YYYY-MM-DD)", value)


def moment(field: str, value: Any) -> dt.datetime:
    """A timezone-aware time; a bare date means its start in UTC, a naive time means UTC."""
    when: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str):
        raw = value.strip().replace("Z", "+00:00")
        try:
            when = dt.datetime.fromisoformat(raw)
        except ValueError:
            when = None
    if when is None:
        raise _fail(field, f"{value!r} is not a date or date-time (ISO 8601)", value)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def text(field: str, value: Any, *, required: bool = False, max_length: int = 200
         ) -> str | None:
    """Trimmed text, ``None`` when empty; refused when required and missing, or too long."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _fail(field, "is required")
        return None
    if not isinstance(value, str):
        raise _fail(field, f"must be text, got {type(value).__name__}", value)
    cleaned = value.strip()
    if len(cleaned) > max_length:
        raise _fail(field, f"must be at most {max_length} characters", value)
    return cleaned


def email(value: Any) -> str | None:
    """A lower-cased e-mail address, or ``None``."""
    cleaned = text("email", value, max_length=254)
    if cleaned is None:
        return None
    if not _EMAIL.match(cleaned):
        raise _fail("email", f"{value!r} is not an e-mail address", value)
    return cleaned.lower()


def check_choice(field: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise _fail(field, f"{value!r} is not one of: {', '.join(choices)}", value)
    return str(value)


def positive_id(field: str, value: Any) -> int:
    """A record id."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(field, f"must be a positive integer id, got {value!r}", value)
    return value


def fmt(amount: Decimal, places: int = 2) -> str:
    """An amount as plain text with at least ``places`` decimals and no trailing noise:
    ``18400.0000`` from the database prints as ``18400.00``, ``0.1250`` as ``0.125``."""
    exact = amount.normalize()
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -places:
        exact = exact.quantize(Decimal(1).scaleb(-places))
    return format(exact, "f")
