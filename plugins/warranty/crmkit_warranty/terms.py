"""Date arithmetic: warranty periods in months, SLA deadlines in business days, entitlement."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Collection

__all__ = ["add_business_days", "add_months", "entitlement"]


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months, clamped to the month's last day (Jan 31 + 1 =
    Feb 28/29), as warranty terms are usually read."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month,
                       day=min(day.day, calendar.monthrange(year, month)[1]))


def add_business_days(start: dt.datetime, days: int,
                      holidays: Collection[dt.date] = ()) -> dt.datetime:
    """``start`` plus ``days`` business days (Monday to Friday, not ``holidays``), keeping the
    time of day: a claim reported on Friday 15:00 with 2 days to triage is due Tuesday 15:00."""
    current = start
    left = days
    while left > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5 and current.date() not in holidays:
            left -= 1
    return current


def entitlement(on: dt.date, warranty_end: dt.date | None,
                extended_end: dt.date | None) -> str:
    """``in_warranty``, ``extended``, ``expired`` on day ``on``; ``unknown`` without a unit."""
    if warranty_end is None:
        return "unknown"
    if on <= warranty_end:
        return "in_warranty"
    if extended_end is not None and on <= extended_end:
        return "extended"
    return "expired"
