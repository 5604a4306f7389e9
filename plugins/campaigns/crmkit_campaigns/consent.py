"""Consent per channel and suppression lists, both honoured by every launch.

A customer's consent row for a channel wins over its row for ``*`` (every channel), so
"no marketing at all, but e-mail is fine" is two rows: ``* = out``, ``email = in``.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from crmkit import Issue, ValidationError
from crmkit.db import utcnow
from crmkit.models import Customer
from sqlalchemy import delete, select

from crmkit_campaigns.models import Consent, Suppression

if TYPE_CHECKING:
    from crmkit import Transaction

__all__ = ["add_suppressions", "consents_of", "import_suppressions", "set_consent"]


def _check_channel(tx: Transaction, channel: str) -> None:
    if channel != "*" and channel not in tx.crm.schemas.channels:
        raise ValidationError([Issue("channel", f"unknown channel {channel!r}; known: * (every "
                                     f"channel), {', '.join(sorted(tx.crm.schemas.channels))}",
                                     channel)])


def set_consent(tx: Transaction, customer_id: int, channel: str, opted_in: bool,
                source: str | None = None) -> Consent:
    """Record an opt-in or opt-out of ``channel`` (``*``: every channel)."""
    _check_channel(tx, channel)
    tx.customers.get(customer_id)  # NotFound
    row = tx.session.get(Consent, (customer_id, channel))
    before = None if row is None else row.opted_in
    if row is None:
        row = Consent(customer_id=customer_id, channel=channel)
        tx.session.add(row)
    row.opted_in, row.source, row.changed_at = opted_in, source, utcnow()
    tx.session.flush()
    if before != opted_in:
        tx.audit("campaigns_consent", f"{customer_id}:{channel}", "update",
                 {"before": {"opted_in": before}, "after": {"opted_in": opted_in}})
        tx.emit("campaigns.consent_changed", {"customer_id": customer_id, "channel": channel,
                                              "opted_in": opted_in})
    return row


def consents_of(tx: Transaction, customer_id: int) -> list[dict[str, Any]]:
    """A customer's consent rows as JSON-ready data."""
    rows = tx.session.scalars(select(Consent).where(Consent.customer_id == customer_id)
                              .order_by(Consent.channel))
    return [{"channel": r.channel, "opted_in": r.opted_in, "source": r.source,
             "changed_at": r.changed_at.isoformat()} for r in rows]


def add_suppressions(tx: Transaction, list_name: str, customer_ids: list[int],
                     reason: str | None = None) -> int:
    """Put customers on a suppression list; how many were new there."""
    if not list_name or len(list_name) > 60:
        raise ValidationError([Issue("list", "must be a name of 1-60 characters", list_name)])
    known = set(tx.session.scalars(select(Suppression.customer_id).where(
        Suppression.list_name == list_name)))
    added = 0
    for customer_id in dict.fromkeys(customer_ids):
        if customer_id in known:
            continue
        tx.session.add(Suppression(list_name=list_name, customer_id=customer_id,
                                   reason=reason, added_at=utcnow()))
        added += 1
    tx.session.flush()
    tx.audit("campaigns_suppression", list_name, "import", {"added": added})
    return added


def import_suppressions(tx: Transaction, list_name: str, text: str) -> int:
    """Import a CSV with a ``customer_id`` column (or an ``email`` one); all or nothing."""
    reader = csv.DictReader(io.StringIO(text))
    fields = reader.fieldnames or []
    if "customer_id" not in fields and "email" not in fields:
        raise ValidationError([Issue("header", "needs a customer_id or an email column")],
                              context="suppression list")
    issues: list[Issue] = []
    ids: list[int] = []
    for line, row in enumerate(reader, start=2):
        raw = (row.get("customer_id") or "").strip()
        if raw:
            if not raw.isdigit() or tx.session.get(Customer, int(raw)) is None:
                issues.append(Issue(f"line {line}: customer_id", f"no customer {raw!r}", raw))
            else:
                ids.append(int(raw))
            continue
        email = (row.get("email") or "").strip().lower()
        found = tx.customers.find_by_email(email) if email else []
        if not found:
            issues.append(Issue(f"line {line}: email", f"no customer with e-mail {email!r}",
                                email))
        ids.extend(c.id for c in found)
    if issues:
        raise ValidationError(issues, context="suppression list")
    return add_suppressions(tx, list_name, ids, reason="import")


def remove_suppression(tx: Transaction, list_name: str, customer_id: int) -> int:
    """Take a customer off a suppression list."""
    result = tx.session.execute(delete(Suppression).where(
        Suppression.list_name == list_name, Suppression.customer_id == customer_id))
    return int(getattr(result, "rowcount", 0) or 0)
