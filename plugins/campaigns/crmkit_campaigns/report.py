"""Analysis per campaign and per variant: rates, revenue, cost per response, ROI, lift.

Definitions (all computed by one ``GROUP BY variant`` query):

* ``sent``: treated members the campaign reached; control members are never sent;
* ``responded``: members with a response (or a conversion carrying the code);
* ``response_rate = responded / sent``; ``conversion_rate = converted / sent``
  (for the control group: ``/ members``, as nothing was sent);
* ``cost`` is the campaign's actual cost, shared between variants by their sends;
* ``cost_per_response = cost / responded``; ``roi = (revenue - cost) / cost``;
* ``lift = (conversion rate of the treated - that of the control) / that of the control``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crmkit_campaigns.models import Campaign, Member
from crmkit_campaigns.validation import money_text

__all__ = ["COLUMNS", "analyse", "to_csv"]

COLUMNS = ("campaign", "variant", "members", "sent", "opened", "responded", "converted",
           "opted_out", "bounced", "response_rate", "conversion_rate", "revenue", "cost",
           "cost_per_response", "roi", "lift")


def _ratio(a: Decimal | int, b: Decimal | int, places: str = "0.0001") -> str | None:
    if not b:
        return None
    return str((Decimal(a) / Decimal(b)).quantize(Decimal(places), ROUND_HALF_EVEN))


def _counts(session: Session, campaign: Campaign) -> list[dict[str, Any]]:
    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    rows = session.execute(
        select(
            Member.variant, func.count(Member.id),
            count(Member.sent_at.is_not(None)), count(Member.opened_at.is_not(None)),
            count(Member.responded_at.is_not(None)),
            count(Member.converted_at.is_not(None)), count(Member.opted_out_at.is_not(None)),
            count(Member.bounced_at.is_not(None)), func.sum(Member.revenue),
        ).where(Member.campaign_id == campaign.id).group_by(Member.variant)
        .order_by(Member.variant)
    ).all()
    keys = ("variant", "members", "sent", "opened", "responded", "converted", "opted_out",
            "bounced", "revenue")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _finish(row: dict[str, Any], campaign: Campaign, cost: Decimal) -> dict[str, Any]:
    base = row["members"] if row["variant"] == "control" else row["sent"]
    revenue = Decimal(row["revenue"] or 0)
    for key in ("members", "sent", "opened", "responded", "converted", "opted_out",
                "bounced"):
        row[key] = int(row[key] or 0)
    row.update(
        campaign=campaign.code,
        response_rate=_ratio(row["responded"], base),
        conversion_rate=_ratio(row["converted"], base),
        revenue=money_text(revenue), cost=money_text(cost.quantize(Decimal("0.01"))),
        cost_per_response=_ratio(cost, row["responded"], "0.01"),
        roi=_ratio(revenue - cost, cost),
        lift=None,
    )
    return row


def analyse(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The campaign's totals (``variant = "all"`` over treated members), each variant and
    the control group, with the lift of each against the control."""
    rows = _counts(session, campaign)
    treated = [r for r in rows if r["variant"] != "control"]
    control = next((r for r in rows if r["variant"] == "control"), None)
    total_sent = sum(int(r["sent"] or 0) for r in treated)
    cost = Decimal(campaign.cost or 0)
    variants = []
    for row in treated:
        share = cost * Decimal(int(row["sent"] or 0)) / total_sent if total_sent else \
            (cost if len(treated) == 1 else Decimal(0))
        variants.append(_finish(row, campaign, share))
    overall = {"variant": "all", **{k: sum(int(r[k] or 0) for r in treated) for k in
               ("members", "sent", "opened", "responded", "converted", "opted_out",
                "bounced")}, "revenue": sum((Decimal(r["revenue"] or 0) for r in treated),
                                            Decimal(0))}
    overall = _finish(overall, campaign, cost)
    control_row = _finish(control, campaign, Decimal(0)) if control else None
    if control_row is not None:
        control_row.update(cost=None, cost_per_response=None, roi=None)
        base = control_row["conversion_rate"]
        for row in [overall, *variants]:
            if base is not None and Decimal(base) > 0 and row["conversion_rate"] is not None:
                row["lift"] = _ratio(Decimal(row["conversion_rate"]) - Decimal(base),
                                     Decimal(base))
    return {"campaign": campaign.code, "name": campaign.name, "state": campaign.state,
            "currency": campaign.currency,
            "budget": money_text(campaign.budget),
            "total": overall, "variants": variants, "control": control_row}


def rows_of(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """The analysis as flat rows: the total, each variant, the control group."""
    rows = [analysis["total"], *analysis["variants"]]
    if analysis["control"] is not None:
        rows.append(analysis["control"])
    return rows


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV with a header, in :data:`COLUMNS` order."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
