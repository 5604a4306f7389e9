"""Shared test helpers (dates relative to today, because future purchases are refused)."""

import datetime as dt

from crmkit_warranty import units


def days_ago(n: int) -> dt.date:
    return dt.date.today() - dt.timedelta(days=n)


def register(tx, customer_id, serial, *, sku="WM-100", age=10, batch="B1", extended=False):
    return units.register_unit(tx, sku=sku, serial=serial, customer_id=customer_id,
                               purchase_date=days_ago(age), batch=batch, extended=extended)
