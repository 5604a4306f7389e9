"""Sales reports: pipeline, weighted forecast, win rate and sales cycle, sales by domain.

Each report is a :class:`Report` (columns and JSON-ready rows) that the CLI prints as a
table, JSON or CSV. Amounts are summed as :class:`~decimal.Decimal` per currency, never
converted and never mixed. Sums run in Python over the selected opportunities: exact on
every backend (SQLite stores money as integers) and fast enough for a sales team's
pipeline; a data warehouse is the analytics plugin's job.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crmkit import Issue, ValidationError
from sqlalchemy import select

from crmkit_sales import values
from crmkit_sales.models import Opportunity, OpportunityLine
from crmkit_sales.opportunities import cycle_days, probability
from crmkit_sales.pipeline import PIPELINE
from crmkit_sales.settings import CATEGORIES, Settings

if TYPE_CHECKING:
    from crmkit.uow import Transaction

__all__ = ["Report", "by_domain", "forecast", "period_of", "pipeline", "win_rate"]

PERIODS = ("month", "quarter")


@attrs.frozen
class Report:
    """A report's title, column names and rows (dicts of JSON-ready values)."""

    title: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"report": self.title, "columns": list(self.columns), "rows": self.rows}


def period_of(day: dt.date, period: str) -> str:
    """``2026-11`` for a month, ``2026-Q4`` for a quarter."""
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise ValidationError([Issue("period", f"{period!r} is not one of: "
                                     f"{', '.join(PERIODS)}", period)])


def _between(opps: Iterable[Opportunity], start: dt.date | None, end: dt.date | None,
             day: Any) -> list[Opportunity]:
    return [o for o in opps if (start is None or day(o) >= start)
            and (end is None or day(o) <= end)]


def _closed_day(opp: Opportunity) -> dt.date:
    return opp.closed_at.date() if opp.closed_at else opp.close_date


def pipeline(tx: Transaction, *, owner: str | None = None) -> Report:
    """Open opportunities by stage (in pipeline order) and owner, per currency."""
    settings = Settings.of(tx.crm)
    order = {s: i for i, s in enumerate(tx.workflows.definitions.get(PIPELINE).states)}
    query = select(Opportunity).where(Opportunity.status == "open")
    if owner:
        query = query.where(Opportunity.owner == owner)
    groups: dict[tuple[str, str, str], list[Opportunity]] = defaultdict(list)
    for opp in tx.session.scalars(query):
        groups[(opp.stage, opp.owner or "", opp.currency)].append(opp)
    rows = []
    for (stage, who, currency), opps in sorted(
            groups.items(), key=lambda g: (order.get(g[0][0], 999), g[0][1], g[0][2])):
        amount = sum((o.amount for o in opps), Decimal(0))
        weighted = sum((o.amount * probability(o, settings) / 100 for o in opps), Decimal(0))
        rows.append({"stage": stage, "owner": who or None, "count": len(opps),
                     "currency": currency, "amount": values.fmt(amount),
                     "weighted": values.fmt(weighted),
                     "probability": settings.stage(stage).probability,
                     "category": settings.stage(stage).category})
    return Report("pipeline", ("stage", "owner", "count", "currency", "amount", "probability",
                               "weighted", "category"), rows)


def forecast(tx: Transaction, *, period: str = "month", start: Any = None, end: Any = None,
             owner: str | None = None) -> Report:
    """Weighted forecast per period and category: open deals by expected close date, won
    deals (category closed, 100%) by the day they were won; lost deals are left out."""
    _check_period(period)
    first = values.date("from", start) if start is not None else None
    last = values.date("to", end) if end is not None else None
    settings = Settings.of(tx.crm)
    query = select(Opportunity).where(Opportunity.status != "lost")
    if owner:
        query = query.where(Opportunity.owner == owner)
    opps = _between(tx.session.scalars(query), first, last, _closed_day)
    groups: dict[tuple[str, str, str], list[Opportunity]] = defaultdict(list)
    for opp in opps:
        category = settings.stage(opp.stage).category if opp.status == "open" else "closed"
        groups[(period_of(_closed_day(opp), period), category, opp.currency)].append(opp)
    rank = {c: i for i, c in enumerate(CATEGORIES)}
    rows = []
    for (when, category, currency), group in sorted(
            groups.items(), key=lambda g: (g[0][0], rank[g[0][1]], g[0][2])):
        amount = sum((o.amount for o in group), Decimal(0))
        weighted = sum((o.amount * probability(o, settings) / 100 for o in group), Decimal(0))
        rows.append({"period": when, "category": category, "currency": currency,
                     "count": len(group), "amount": values.fmt(amount),
                     "weighted": values.fmt(weighted)})
    return Report(f"forecast by {period}", ("period", "category", "currency", "count",
                                            "amount", "weighted"), rows)


def win_rate(tx: Transaction, *, start: Any = None, end: Any = None) -> Report:
    """Won and lost deals per owner (and in total): win rate and average sales cycle."""
    first = values.date("from", start) if start is not None else None
    last = values.date("to", end) if end is not None else None
    closed = _between(tx.session.scalars(select(Opportunity).where(
        Opportunity.status.in_(("won", "lost")))), first, last, _closed_day)
    owners: dict[str, list[Opportunity]] = defaultdict(list)
    for opp in closed:
        owners[opp.owner or ""].append(opp)
    rows = [_rate_row(who or None, opps) for who, opps in sorted(owners.items())]
    rows.append(_rate_row("(all)", closed))
    return Report("win rate", ("owner", "won", "lost", "win_rate", "avg_cycle_days"), rows)


def _rate_row(owner: str | None, opps: list[Opportunity]) -> dict[str, Any]:
    won = [o for o in opps if o.status == "won"]
    cycles = [c for c in (cycle_days(o) for o in opps) if c is not None]
    rate = (Decimal(len(won) * 100) / len(opps)).quantize(Decimal("0.1")) if opps else None
    return {"owner": owner, "won": len(won), "lost": len(opps) - len(won),
            "win_rate": f"{rate}%" if rate is not None else None,
            "avg_cycle_days": round(sum(cycles) / len(cycles), 1) if cycles else None}


def by_domain(tx: Transaction, *, period: str = "month", start: Any = None, end: Any = None
              ) -> Report:
    """Won sales per domain (products, services, advertising, ...) and period, per
    currency, from the opportunities' lines; a won deal without lines is ``unassigned``."""
    _check_period(period)
    first = values.date("from", start) if start is not None else None
    last = values.date("to", end) if end is not None else None
    won = _between(tx.session.scalars(select(Opportunity).where(
        Opportunity.status == "won")), first, last, _closed_day)
    lines: dict[int, list[OpportunityLine]] = defaultdict(list)
    if won:
        for line in tx.session.scalars(select(OpportunityLine).where(
                OpportunityLine.opportunity_id.in_([o.id for o in won]))):
            lines[line.opportunity_id].append(line)
    sums: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    deals: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for opp in won:
        when = period_of(_closed_day(opp), period)
        parts = [(line.domain, line.quantity * line.unit_price) for line in lines[opp.id]]
        for domain, amount in parts or [("unassigned", opp.amount)]:
            sums[(when, domain, opp.currency)] += amount
            deals[(when, domain, opp.currency)].add(opp.id)
    rows = [{"period": k[0], "domain": k[1], "currency": k[2], "deals": len(deals[k]),
             "amount": values.fmt(v)} for k, v in sorted(sums.items())]
    return Report(f"sales by domain and {period}", ("period", "domain", "currency", "deals",
                                                   "amount"), rows)
