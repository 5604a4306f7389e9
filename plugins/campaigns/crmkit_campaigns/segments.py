"""Segments: named criteria over customers; ``preview`` counts them, ``freeze`` lists them.

A segment's criteria use the kernel's criteria language (:mod:`crmkit.criteria`), so they
can name customer fields, custom attributes, tags, interaction history and plugin fields.
A frozen segment is a static list of customer ids, written with one ``INSERT ... SELECT``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmkit import Conflict, Issue, NotFound, Rejected, ValidationError
from crmkit.db import utcnow
from crmkit.models import Customer
from sqlalchemy import ColumnElement, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from crmkit_campaigns.models import Segment, SegmentMember

if TYPE_CHECKING:
    from crmkit import Crm, Transaction

__all__ = ["add", "condition", "freeze", "get", "list_all", "preview", "to_dict"]


def to_dict(segment: Segment) -> dict[str, Any]:
    """A segment as JSON-ready data."""
    return {
        "id": segment.id, "name": segment.name, "description": segment.description,
        "criteria": segment.criteria,
        "frozen_at": segment.frozen_at.isoformat() if segment.frozen_at else None,
        "created_at": segment.created_at.isoformat(),
    }


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        raise ValidationError([Issue("name", "must be a non-empty text of at most 100 "
                                     "characters", name)], context="segment")
    return name.strip()


def add(tx: Transaction, name: str, criteria: Any, description: str | None = None) -> Segment:
    """Create a segment; its criteria are checked against this deployment's fields."""
    name = _check_name(name)
    tx.crm.criteria(criteria, context=f"segment {name!r}: criteria")  # ValidationError
    if tx.session.scalar(select(Segment.id).where(Segment.name == name)) is not None:
        raise Conflict(f"a segment named {name!r} already exists")
    segment = Segment(name=name, description=description, criteria=dict(criteria),
                      created_at=utcnow())
    tx.session.add(segment)
    tx.session.flush()
    tx.audit("campaigns_segment", segment.id, "create", {"after": to_dict(segment)})
    return segment


def get(session: Session, key: str | int) -> Segment:
    """The segment with this name, else with this id; :class:`NotFound` otherwise."""
    segment = session.scalars(select(Segment).where(Segment.name == str(key))).first()
    if segment is None and (isinstance(key, int) or key.isdigit()):
        segment = session.get(Segment, int(key))
    if segment is None:
        raise NotFound(f"no segment {key!r}")
    return segment


def list_all(session: Session) -> list[Segment]:
    """Every segment, by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def condition(crm: Crm, segment: Segment, now: dt.datetime | None = None
              ) -> ColumnElement[bool]:
    """A boolean expression over ``customer``: "the customer is in the segment"."""
    if segment.frozen_at is not None:
        return exists().where(SegmentMember.segment_id == segment.id,
                              SegmentMember.customer_id == Customer.id)
    return crm.criteria(segment.criteria, context=f"segment {segment.name!r}").to_sql(now)


def preview(crm: Crm, session: Session, segment: Segment, sample: int = 10,
            now: dt.datetime | None = None) -> dict[str, Any]:
    """How many customers the segment holds now, and the first ``sample`` of them."""
    where = condition(crm, segment, now)
    count = session.scalar(select(func.count()).select_from(Customer).where(where)) or 0
    rows = session.execute(
        select(Customer.id, Customer.kind, Customer.name, Customer.email)
        .where(where).order_by(Customer.id).limit(sample)
    ).all()
    return {"segment": segment.name, "frozen": segment.frozen_at is not None, "count": count,
            "sample": [dict(row._mapping) for row in rows]}


def freeze(tx: Transaction, segment: Segment) -> int:
    """Turn the segment into a static list of the customers it holds now; their count."""
    if segment.frozen_at is not None:
        raise Rejected(f"segment {segment.name!r} is already frozen "
                       f"(since {segment.frozen_at.isoformat()})")
    now = utcnow()
    source = select(literal(segment.id, type_=SegmentMember.segment_id.type), Customer.id) \
        .where(condition(tx.crm, segment, now))
    tx.session.connection().execute(
        insert(SegmentMember).from_select(["segment_id", "customer_id"], source))
    # Counted, not taken from rowcount: psycopg reports -1 for some INSERT ... SELECT.
    count = tx.session.scalar(select(func.count()).select_from(SegmentMember)
                              .where(SegmentMember.segment_id == segment.id)) or 0
    segment.frozen_at = now
    tx.session.flush()
    tx.audit("campaigns_segment", segment.id, "freeze", {"members": count})
    tx.emit("campaigns.segment_frozen", {"segment_id": segment.id, "members": count})
    return count
