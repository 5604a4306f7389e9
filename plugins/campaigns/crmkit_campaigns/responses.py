"""Responses: member statuses with timestamps, by CLI, import, interaction or won deal.

A member moves forward only (sent, opened, responded, converted); ``opted_out`` and
``bounced`` are recorded whatever the status was. Each status keeps the time it was first
reached; a conversion adds its revenue once per source (``conversion_ref``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmkit import Issue, NotFound, ValidationError
from crmkit.db import utcnow
from sqlalchemy import ColumnElement, or_, select

from crmkit_campaigns import consent, validation
from crmkit_campaigns.models import Campaign, Member

if TYPE_CHECKING:
    from crmkit import Transaction
    from crmkit.models import Interaction

__all__ = ["RESPONSE_STATUSES", "from_interaction", "import_csv", "record", "to_dict"]

RESPONSE_STATUSES = ("opened", "responded", "converted", "opted_out", "bounced")
RANK = {"targeted": 0, "control": 0, "sent": 1, "opened": 2, "responded": 3, "converted": 4,
        "bounced": 5, "opted_out": 6}
COLUMNS = ("customer_id", "status", "at", "revenue", "ref")


def to_dict(member: Member) -> dict[str, Any]:
    """A member as JSON-ready data."""
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "campaign_id": member.campaign_id, "customer_id": member.customer_id,
        "variant": member.variant, "launch": member.launch, "status": member.status,
        "targeted_at": iso(member.targeted_at), "sent_at": iso(member.sent_at),
        "opened_at": iso(member.opened_at), "responded_at": iso(member.responded_at),
        "converted_at": iso(member.converted_at), "opted_out_at": iso(member.opted_out_at),
        "bounced_at": iso(member.bounced_at),
        "revenue": validation.money_text(member.revenue),
        "conversion_ref": member.conversion_ref,
    }


def member_of(tx: Transaction, campaign: Campaign, customer_id: int) -> Member:
    """The customer's membership; :class:`NotFound` when it was not a member."""
    member = tx.session.scalars(select(Member).where(
        Member.campaign_id == campaign.id, Member.customer_id == customer_id)).first()
    if member is None:
        raise NotFound(f"customer {customer_id} is not a member of campaign {campaign.code!r}")
    return member


def _apply(tx: Transaction, campaign: Campaign, member: Member, status: str,
           at: dt.datetime, revenue: Decimal | None, ref: str | None) -> bool:
    """Move ``member`` to ``status``; False when nothing changed (a repeated response)."""
    if status == "converted" and ref is not None and member.conversion_ref is not None \
            and ref in member.conversion_ref.split(","):
        return False
    column = f"{status}_at"
    changed = False
    if getattr(member, column) is None:
        setattr(member, column, at)
        changed = True
    if status == "converted":
        if member.responded_at is None and ref is not None and not ref.startswith("window:"):
            member.responded_at = at
        if revenue is not None:
            member.revenue = (member.revenue or Decimal(0)) + revenue
            changed = True
        if ref is not None:
            member.conversion_ref = ",".join(filter(None, [member.conversion_ref, ref]))[:100]
    if RANK[status] > RANK[member.status] and member.status not in ("opted_out",):
        member.status = status
        changed = True
    if status == "opted_out":
        consent.set_consent(tx, member.customer_id, campaign.channel, False,
                            source=f"campaign {campaign.code}")
    if changed:
        tx.session.flush()
        tx.emit("campaigns.response", {
            "campaign_id": campaign.id, "code": campaign.code, "customer_id": member.customer_id,
            "status": status, "revenue": validation.money_text(revenue),
        })
    return changed


def record(tx: Transaction, campaign: Campaign, customer_id: int, status: str, *,
           at: Any = None, revenue: Any = None, ref: str | None = None) -> Member:
    """Record one response; every bad value is reported and nothing changes."""
    issues: list[Issue] = []
    _check(issues, "", status, revenue)
    when = validation.time(issues, "at", at) or utcnow()
    amount = validation.money(issues, "revenue", revenue)
    if issues:
        raise ValidationError(issues, context=f"response to campaign {campaign.code!r}")
    member = member_of(tx, campaign, customer_id)
    _apply(tx, campaign, member, status, when, amount, ref or "manual")
    return member


def _check(issues: list[Issue], prefix: str, status: Any, revenue: Any) -> None:
    if status not in RESPONSE_STATUSES:
        issues.append(Issue(f"{prefix}status", f"must be one of {', '.join(RESPONSE_STATUSES)}",
                            status))
    if revenue not in (None, "") and status != "converted":
        issues.append(Issue(f"{prefix}revenue", "only a conversion carries revenue", revenue))


def import_csv(tx: Transaction, campaign: Campaign, text: str,
               rejects: list[tuple[int, dict[str, str], list[Issue]]] | None = None) -> int:
    """Import responses from CSV (``customer_id,status[,at,revenue,ref]``).

    All or nothing: a bad line raises :class:`ValidationError` naming every bad line and
    field. With a ``rejects`` list, bad lines are appended to it instead (line number, row,
    issues) and the good ones are imported. Returns how many responses changed a member.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("customer_id", "status") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError([Issue("header", f"missing column(s): {', '.join(missing)}; "
                                     f"expected {', '.join(COLUMNS)}")], context="responses")
    rows = list(reader)
    issues: list[Issue] = []
    parsed: list[tuple[Member, str, dt.datetime, Decimal | None, str | None]] = []
    members = _members(tx, campaign, (r.get("customer_id") for r in rows))
    for line, row in enumerate(rows, start=2):
        prefix = f"line {line}: "
        before = len(issues)
        raw_id = (row.get("customer_id") or "").strip()
        customer_id = int(raw_id) if raw_id.isdigit() else None
        if customer_id is None:
            issues.append(Issue(f"{prefix}customer_id", "must be a customer id", raw_id))
        elif customer_id not in members:
            issues.append(Issue(f"{prefix}customer_id", f"customer {customer_id} is not a "
                                f"member of campaign {campaign.code!r}", customer_id))
        status = (row.get("status") or "").strip()
        _check(issues, prefix, status, row.get("revenue"))
        when = validation.time(issues, f"{prefix}at", row.get("at")) or utcnow()
        amount = validation.money(issues, f"{prefix}revenue", row.get("revenue"))
        if len(issues) == before and customer_id is not None:
            parsed.append((members[customer_id], status, when, amount,
                           (row.get("ref") or "").strip() or f"import:line {line}"))
        elif rejects is not None:
            rejects.append((line, row, issues[before:]))
            del issues[before:]
    if issues:
        raise ValidationError(issues, context="responses")
    return sum(_apply(tx, campaign, m, s, w, a, r) for m, s, w, a, r in parsed)


def _members(tx: Transaction, campaign: Campaign, ids: Iterable[Any]) -> dict[int, Member]:
    wanted = sorted({int(i) for i in ids if isinstance(i, str) and i.strip().isdigit()})
    found: dict[int, Member] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for member in tx.session.scalars(select(Member).where(
                Member.campaign_id == campaign.id, Member.customer_id.in_(chunk))):
            found[member.customer_id] = member
    return found


def codes_in(payload: Mapping[str, Any]) -> list[str]:
    """The campaign or offer codes an interaction's payload carries."""
    found = []
    for key in ("campaign", "campaign_code", "offer_code"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            found.append(value)
    return found


def from_interaction(tx: Transaction, interaction: Interaction) -> None:
    """An inbound interaction carrying a campaign's (or its offer's) code is a response;
    a purchase by a member of a running campaign converts it (revenue in its currency)."""
    payload = interaction.payload if isinstance(interaction.payload, Mapping) else {}
    if payload.get("event") == "won" and isinstance(payload.get("opportunity_id"), int):
        # The sales plugin logs a won opportunity on the timeline (it may also emit
        # sales.opportunity_won: both paths convert once, keyed by the opportunity).
        from_opportunity(tx, {"opportunity_id": payload["opportunity_id"],
                              "customer_id": interaction.customer_id,
                              "amount": interaction.amount, "currency": interaction.currency})
        return
    if interaction.direction != "inbound":
        return
    codes = codes_in(payload)
    purchase = interaction.kind == "purchase"
    if not codes and not purchase:
        return
    query = select(Member, Campaign).join(Campaign, Campaign.id == Member.campaign_id).where(
        Member.customer_id == interaction.customer_id)
    conditions: list[ColumnElement[bool]] = []
    if codes:
        conditions.append(Campaign.code.in_(codes))
    if purchase:
        conditions.append(Campaign.state == "running")
    for member, campaign in tx.session.execute(query.where(or_(*conditions))).all():
        carries = campaign.code in codes or (campaign.offer or {}).get("code") in codes
        at = interaction.occurred_at
        if purchase:
            revenue = interaction.amount if interaction.currency == campaign.currency else None
            ref = f"interaction:{interaction.id}" if carries else \
                f"window:interaction:{interaction.id}"
            if carries or at >= member.targeted_at:
                _apply(tx, campaign, member, "converted", at, revenue, ref)
        elif carries:
            _apply(tx, campaign, member, "responded", at, None, None)


def from_opportunity(tx: Transaction, payload: Mapping[str, Any]) -> int:
    """A won opportunity (``sales.opportunity_won``) converts the customer's memberships of
    running campaigns, or of the campaign it names; how many members converted."""
    customer_id = payload.get("customer_id")
    if not isinstance(customer_id, int):
        return 0
    code = payload.get("campaign")
    query = select(Member, Campaign).join(Campaign, Campaign.id == Member.campaign_id).where(
        Member.customer_id == customer_id)
    query = query.where(Campaign.code == code) if isinstance(code, str) else \
        query.where(Campaign.state == "running")
    ref = f"opportunity:{payload.get('opportunity_id', payload.get('id'))}"
    converted = 0
    for member, campaign in tx.session.execute(query).all():
        amount = payload.get("amount")
        revenue = Decimal(str(amount)) if amount is not None and \
            payload.get("currency") == campaign.currency else None
        converted += _apply(tx, campaign, member, "converted", utcnow(), revenue, ref)
    return converted
