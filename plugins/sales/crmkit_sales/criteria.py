"""Criteria fields: sales data in automation rules, workflow guards and segments.

``sales.open_opportunities`` (how many open deals a customer has) and
``sales.won_opportunities`` (how many it has won). The SQL forms are correlated
subqueries on ``customer.id``; the Python forms read ``CustomerRecord.extra`` under the
same names (a caller that evaluates criteria in Python fills it with :func:`extra_for`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit.criteria import CriteriaField, CustomerRecord
from crmkit.models import Customer
from sqlalchemy import func, select

from crmkit_sales.models import Opportunity

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["FIELDS", "extra_for"]


def _count(status: str) -> Any:
    return (select(func.count(Opportunity.id))
            .where(Opportunity.customer_id == Customer.id, Opportunity.status == status)
            .correlate(Customer).scalar_subquery())


def _field(status: str) -> CriteriaField:
    name = f"sales.{status}_opportunities"

    def sql() -> Any:
        return _count(status)

    def get(record: CustomerRecord) -> Any:
        return record.extra.get(name, 0)

    return CriteriaField(name=name, type="integer", sql=sql, get=get,
                         description=f"How many {status} opportunities the customer has")


FIELDS = [_field(status) for status in ("open", "won")]


def extra_for(session: Session, customer_id: int) -> dict[str, int]:
    """The values of the fields for one customer, for Python evaluation."""
    rows = session.execute(select(Opportunity.status, func.count(Opportunity.id)).where(
        Opportunity.customer_id == customer_id).group_by(Opportunity.status))
    counts = {status: count for status, count in rows}
    return {f"sales.{s}_opportunities": counts.get(s, 0) for s in ("open", "won")}
