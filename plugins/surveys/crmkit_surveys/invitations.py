"""Invitations: choosing recipients, tokens, sending, reminding.

Sending writes, in the caller's transaction, one :class:`Invitation` per recipient, a
``surveys.invitation_sent`` event in the outbox (channel plugins or a ``webhook`` rule
deliver it; it carries the answer link) and, for customers, a ``survey_invitation`` entry
on the timeline. The token is 32 random bytes (64 hex digits); only its SHA-256
is stored in the invitation table.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
from crmkit import Issue, NotFound, Transaction, ValidationError
from crmkit.db import utcnow
from crmkit.models import Customer
from sqlalchemy import or_, select

from crmkit_surveys.models import Invitation, Survey
from crmkit_surveys.settings import Settings

__all__ = ["Recipient", "Sent", "by_criteria", "by_segment", "find_by_token", "hash_token",
           "load_employees", "new_token", "recently_invited", "remind", "send"]

_EMPLOYEE_FIELDS = ("name", "email", "department", "role")


@attrs.frozen
class Recipient:
    """A customer (``customer_id``) or an employee (``email`` with department and role)."""

    customer_id: int | None = None
    email: str | None = None
    name: str | None = None
    department: str | None = None
    role: str | None = None
    segment: str | None = None


@attrs.frozen
class Sent:
    """An invitation just written, with its token (which is not stored)."""

    invitation: Invitation
    token: str
    link: str


def new_token() -> str:
    """256 random bits as 64 hex digits: URL-safe, and never starting with "-" (which a
    command line would take for an option, as ``token_urlsafe`` can)."""
    return secrets.token_hex(32)


def hash_token(token: str) -> str:
    """What the database stores of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def by_criteria(tx: Transaction, document: Any, *, segment: str = "criteria",
                context: str = "audience") -> list[Recipient]:
    """Customers that match a criteria document (see crmkit's docs/workflows.md)."""
    criteria = tx.crm.criteria(document, context=context)
    ids = tx.session.scalars(select(Customer.id).where(criteria.to_sql())
                             .order_by(Customer.id)).all()
    return [Recipient(customer_id=i, segment=segment) for i in ids]


def by_segment(tx: Transaction, name: str, settings: Settings) -> list[Recipient]:
    """Customers of a segment configured under ``[plugin.surveys.segments]``."""
    if name not in settings.segments:
        known = ", ".join(sorted(settings.segments)) or "none configured"
        raise NotFound(f"no segment {name!r} in [plugin.surveys.segments] (known: {known})")
    return by_criteria(tx, settings.segments[name], segment=name,
                       context=f"plugin.surveys.segments.{name}")


def load_employees(path: str | Path) -> list[Recipient]:
    """Employees from a CSV (a header with name, email, department, role) or JSON list."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError([Issue(str(path), f"cannot read the file: {exc.strerror}")]) from None
    rows: list[Any]
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError([Issue(str(path), f"not valid JSON: {exc}")]) from None
        if not isinstance(rows, list):
            raise ValidationError([Issue(str(path), "must be a list of employees")])
        is_csv = False
    else:
        rows = list(csv.DictReader(text.splitlines()))
        is_csv = True
    issues: list[Issue] = []
    found: list[Recipient] = []
    seen: set[str] = set()
    for n, row in enumerate(rows):
        # CSV records are named by their line (the header is line 1), JSON ones by index.
        where = f"line {n + 2}" if is_csv else f"[{n}]"
        if not isinstance(row, dict):
            issues.append(Issue(where, "must be an object with name, email, department, role"))
            continue
        values = {k: (str(row[k]).strip() if row.get(k) is not None else "")
                  for k in _EMPLOYEE_FIELDS}
        for field in ("email", "department"):
            if not values[field]:
                issues.append(Issue(f"{where}.{field}", "is required"))
        email = values["email"].lower()
        if email and "@" not in email:
            issues.append(Issue(f"{where}.email", "is not an e-mail address", email))
        if email in seen:
            issues.append(Issue(f"{where}.email", "appears twice", email))
        seen.add(email)
        found.append(Recipient(email=email, name=values["name"] or None,
                               department=values["department"] or None,
                               role=values["role"] or None, segment="employees"))
    if issues:
        raise ValidationError(issues, context=str(path))
    return found


def send(tx: Transaction, survey: Survey, recipients: Iterable[Recipient], settings: Settings,
         *, expires_after: dt.timedelta | None = None, now: dt.datetime | None = None,
         min_interval: dt.timedelta | None = None) -> list[Sent]:
    """Invite each recipient to ``survey`` (a published version).

    A recipient who already holds an open invitation to this version (not answered, not
    expired) is skipped, so sending again reaches only newcomers. With ``min_interval``,
    so is a customer invited to any survey within that period.
    """
    now = now or utcnow()
    expires_at = now + (expires_after or settings.expires_after)
    wanted = list(recipients)
    _check_audience(survey, wanted)
    open_ = _open_invitations(tx, survey, now)
    if min_interval is not None:
        open_ |= recently_invited(tx, [r.customer_id for r in wanted], now - min_interval)
    sent: list[Sent] = []
    for recipient in wanted:
        who = recipient.customer_id if recipient.customer_id is not None else recipient.email
        if who in open_:
            continue
        open_.add(who)
        token = new_token()
        invitation = Invitation(
            survey_id=survey.id, token_hash=hash_token(token),
            customer_id=recipient.customer_id, email=recipient.email, name=recipient.name,
            department=recipient.department, role=recipient.role, segment=recipient.segment,
            sent_at=now, expires_at=expires_at, reminders=0,
        )
        tx.session.add(invitation)
        tx.session.flush()
        sent.append(_announce(tx, survey, invitation, token, settings, "invitation_sent"))
    return sent


def remind(tx: Transaction, survey: Survey, settings: Settings, *,
           now: dt.datetime | None = None) -> list[Sent]:
    """Remind everyone invited to ``survey`` who has not completed it.

    Only open invitations (not expired), at most ``max_reminders`` times, and no sooner
    than ``remind_after`` since the last message. A reminder carries a fresh token: the old
    link stops working, so a forwarded or leaked first message cannot be used any more.
    """
    now = now or utcnow()
    due = now - settings.remind_after
    rows = tx.session.scalars(
        select(Invitation).where(
            Invitation.survey_id == survey.id,
            or_(Invitation.answered.is_(None), Invitation.answered == "partial"),
            Invitation.expires_at > now,
            Invitation.reminders < settings.max_reminders,
            or_(Invitation.last_reminded_at.is_(None), Invitation.last_reminded_at <= due),
            Invitation.sent_at <= due,
        ).order_by(Invitation.id).with_for_update()
    ).all()
    sent = []
    for invitation in rows:
        token = new_token()
        invitation.token_hash = hash_token(token)
        invitation.reminders += 1
        invitation.last_reminded_at = now
        tx.session.flush()
        sent.append(_announce(tx, survey, invitation, token, settings, "reminder_sent"))
    return sent


def find_by_token(tx: Transaction, token: str, *, lock: bool = True) -> Invitation:
    """The invitation a token opens; :class:`NotFound` for an unknown token."""
    if not isinstance(token, str) or not 10 <= len(token) <= 200:
        raise NotFound("unknown survey token")
    query = select(Invitation).where(Invitation.token_hash == hash_token(token.strip()))
    invitation = tx.session.scalars(query.with_for_update() if lock else query).first()
    if invitation is None:
        raise NotFound("unknown survey token (a reminder replaces the token it was sent with)")
    return invitation


def recently_invited(tx: Transaction, customer_ids: Sequence[int | None],
                     since: dt.datetime) -> set[Any]:
    """Which of ``customer_ids`` were invited to any survey at or after ``since``.

    The customers' rows are locked first (PostgreSQL, MariaDB), so two triggers for one
    customer at the same moment cannot both see "not yet surveyed".
    """
    ids = sorted({i for i in customer_ids if i is not None})
    found: set[Any] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        tx.session.execute(select(Customer.id).where(Customer.id.in_(chunk))
                           .order_by(Customer.id).with_for_update())
        found.update(tx.session.scalars(select(Invitation.customer_id).where(
            Invitation.customer_id.in_(chunk), Invitation.sent_at >= since)))
    return found


def _check_audience(survey: Survey, recipients: Sequence[Recipient]) -> None:
    employees = survey.audience == "employees"
    wrong = [r for r in recipients if (r.customer_id is None) != employees]
    if wrong:
        expected = "employees (--employees FILE)" if employees else "customers"
        raise ValidationError([Issue("audience", f"survey {survey.key!r} is for {expected}")],
                              context=f"sending survey {survey.key!r}")


def _open_invitations(tx: Transaction, survey: Survey, now: dt.datetime) -> set[Any]:
    rows = tx.session.execute(select(Invitation.customer_id, Invitation.email).where(
        Invitation.survey_id == survey.id, Invitation.expires_at > now,
        or_(Invitation.answered.is_(None), Invitation.answered == "partial")))
    return {customer_id if customer_id is not None else email for customer_id, email in rows}


def _announce(tx: Transaction, survey: Survey, invitation: Invitation, token: str,
              settings: Settings, what: str) -> Sent:
    link = settings.link.replace("{token}", token)
    email, name = invitation.email, invitation.name
    if invitation.customer_id is not None:
        # Channel plugins get the address with the event; it is not copied into our table.
        customer = tx.customers.get(invitation.customer_id)
        email, name = customer.email, customer.name
    tx.emit(f"surveys.{what}", {
        "survey": survey.key, "version": survey.version, "title": survey.title,
        "invitation_id": invitation.id, "customer_id": invitation.customer_id,
        "email": email, "name": name, "token": token, "link": link,
        "expires_at": invitation.expires_at.isoformat(), "reminder": invitation.reminders,
    })
    if invitation.customer_id is not None:
        label = "Survey reminder" if what == "reminder_sent" else "Survey invitation"
        tx.interactions.log(
            invitation.customer_id, channel=settings.channel, kind="survey_invitation",
            direction="outbound", summary=f"{label}: {survey.title} (v{survey.version})",
            payload={"survey": survey.key, "version": survey.version,
                     "invitation_id": invitation.id, "reminder": invitation.reminders},
        )
    return Sent(invitation=invitation, token=token, link=link)
