"""Input checks shared by leads, opportunities, follow-ups and reports (no database)."""

import datetime as dt
from decimal import Decimal

import pytest
from crmkit import ValidationError

from crmkit_sales import values


@pytest.mark.parametrize("raw, expected", [
    ("18400.00", Decimal("18400.00")), ("1.50000", Decimal("1.5")), (7, Decimal(7)),
    (Decimal("0.0001"), Decimal("0.0001")), (" 12 ", Decimal(12)),
])
def test_money_accepts_exact_amounts(raw, expected):
    assert values.money("amount", raw) == expected


@pytest.mark.parametrize("raw, message", [
    (1.5, "decimal number given as text"), (True, "decimal number"), ("-0.01", "negative"),
    ("1.23456", "more than 4 decimal places"), ("NaN", "not a finite number"),
    ("Infinity", "not a finite number"), ("1e20", "too large"), ("12,50", "not a number"),
])
def test_money_refuses_the_rest(raw, message):
    with pytest.raises(ValidationError, match=message):
        values.money("amount", raw)


def test_currencies_dates_and_amount_formatting():
    assert values.currency(" eur ") == "EUR"
    with pytest.raises(ValidationError, match="'ABC' is not an ISO 4217"):
        values.currency("ABC")
    assert values.date("close_date", "2026-12-31") == dt.date(2026, 12, 31)
    assert values.moment("due", "2026-12-01") == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert values.moment("due", "2026-12-01T10:00:00+02:00").utcoffset() == dt.timedelta(hours=2)
    for bad in ("2026-12-32", "", None, 20261231):
        with pytest.raises(ValidationError, match="is not a date"):
            values.date("close_date", bad)
    assert [values.fmt(Decimal(x)) for x in ("18400.0000", "0.1250", "1E+2", "3")] == [
        "18400.00", "0.125", "100.00", "3.00"]
    assert values.fmt(Decimal("40.0000"), 0) == "40"
