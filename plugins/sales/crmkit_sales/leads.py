"""Leads: capture (by hand, import or event), de-duplication, scoring, qualification and
conversion into a customer plus an opportunity in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmkit import Conflict, Issue, NotFound, Rejected, ValidationError
from crmkit.db import utcnow
from crmkit.models import Customer
from sqlalchemy import func, or_, select, update

from crmkit_sales import opportunities, values
from crmkit_sales.models import Lead, Task
from crmkit_sales.settings import Settings

if TYPE_CHECKING:
    from crmkit.uow import Transaction

__all__ = ["FIELDS", "Conversion", "capture", "convert", "duplicates", "get", "score",
           "set_status"]

#: The fields a lead is captured with (CLI options, import columns, event payload keys).
FIELDS = ("contact_name", "company", "email", "phone", "title", "country", "source",
          "campaign", "owner", "notes")
ACTIVITY_KINDS = ("call", "meeting", "email")
CHANNEL_OF = {"call": "phone", "meeting": "meeting", "email": "email", "task": "system"}


def _clean(record: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise ValidationError([Issue(key, f"unknown lead field; known: {', '.join(FIELDS)}")
                               for key in unknown])
    data = {
        "contact_name": values.text("contact_name", record.get("contact_name")),
        "company": values.text("company", record.get("company")),
        "email": values.email(record.get("email")),
        "phone": values.text("phone", record.get("phone"), max_length=40),
        "title": values.text("title", record.get("title"), max_length=100),
        "country": values.text("country", record.get("country"), max_length=2),
        "source": values.text("source", record.get("source"), required=True, max_length=60),
        "campaign": values.text("campaign", record.get("campaign"), max_length=100),
        "owner": values.text("owner", record.get("owner"), max_length=100),
        "notes": values.text("notes", record.get("notes"), max_length=5000),
    }
    if data["country"]:
        data["country"] = data["country"].upper()
        if len(data["country"]) != 2 or not data["country"].isalpha():
            raise ValidationError([Issue("country", "must be an ISO 3166 two-letter code",
                                         record.get("country"))])
    if settings.lead_sources is not None:
        values.check_choice("source", data["source"], settings.lead_sources)
    if not (data["contact_name"] or data["company"]):
        raise ValidationError([Issue("contact_name", "a lead needs a contact name or a "
                                     "company")])
    return data


def duplicates(tx: Transaction, data: Mapping[str, Any]) -> list[str]:
    """Why ``data`` duplicates a known customer or lead (same e-mail, same name)."""
    found: list[str] = []
    if data.get("email"):
        for customer in tx.customers.find_by_email(data["email"]):
            found.append(f"customer {customer.id} has the e-mail {data['email']}")
        for lead in tx.session.scalars(select(Lead).where(Lead.email == data["email"])):
            found.append(f"lead {lead.id} has the e-mail {data['email']}")
    names = sorted({n.lower() for n in (data.get("company"), data.get("contact_name")) if n})
    if names:
        for customer in tx.session.scalars(select(Customer).where(
                func.lower(Customer.name).in_(names)).order_by(Customer.id)):
            found.append(f"customer {customer.id} is named {customer.name!r}")
        query = select(Lead).where(or_(func.lower(Lead.company).in_(names),
                                       func.lower(Lead.contact_name).in_(names)))
        for lead in tx.session.scalars(query.order_by(Lead.id)):
            found.append(f"lead {lead.id} is named {lead.display_name!r}")
    return list(dict.fromkeys(found))


def capture(tx: Transaction, record: Mapping[str, Any], *, force: bool = False) -> Lead:
    """Capture a lead; a duplicate of a customer or lead is refused unless ``force``."""
    data = _clean(record, Settings.of(tx.crm))
    if not force:
        found = duplicates(tx, data)
        if found:
            raise Conflict("duplicate lead: " + "; ".join(found))
    now = utcnow()
    lead = Lead(**data, status="new", created_at=now, updated_at=now)
    tx.session.add(lead)
    tx.session.flush()
    tx.audit("sales_lead", lead.id, "create", {"after": data})
    tx.emit("sales.lead_captured", {"lead_id": lead.id, "source": lead.source,
                                    "campaign": lead.campaign})
    return lead


def get(tx: Transaction, lead_id: int) -> Lead:
    """The lead; :class:`NotFound` if there is none."""
    lead = tx.session.get(Lead, values.positive_id("lead", lead_id))
    if lead is None:
        raise NotFound(f"no lead with id {lead_id}")
    return lead


def recent_activities(tx: Transaction, lead_ids: list[int], settings: Settings,
                      now: dt.datetime | None = None) -> dict[int, int]:
    """How many calls, meetings and e-mails were done on each lead recently (one query)."""
    if not lead_ids:
        return {}
    since = (now or utcnow()) - dt.timedelta(days=settings.activity_days)
    rows = tx.session.execute(select(Task.lead_id, func.count(Task.id)).where(
        Task.lead_id.in_(lead_ids), Task.status == "done", Task.kind.in_(ACTIVITY_KINDS),
        Task.done_at >= since).group_by(Task.lead_id))
    return {int(lead_id): int(count) for lead_id, count in rows if lead_id is not None}


def score(tx: Transaction, lead: Lead, settings: Settings | None = None,
          *, now: dt.datetime | None = None, recent: int | None = None
          ) -> tuple[int, list[dict[str, Any]]]:
    """The lead's score and, for each rule that gave points, how many and why.

    ``recent`` is the lead's count from :func:`recent_activities` when the caller scores
    many leads at once; without it the count is read here.
    """
    settings = settings or Settings.of(tx.crm)
    reasons: list[dict[str, Any]] = []
    points = settings.source_points.get(lead.source)
    if points:
        reasons.append({"points": points, "why": f"source is {lead.source}"})
    for rule in settings.field_rules:
        value = getattr(lead, rule.field)
        if value is None:
            continue
        if rule.value is None:
            reasons.append({"points": rule.points, "why": f"has a {rule.field}"})
        elif str(value).lower() == rule.value.lower():
            reasons.append({"points": rule.points, "why": f"{rule.field} is {rule.value}"})
    if recent is None:
        recent = recent_activities(tx, [lead.id], settings, now).get(lead.id, 0)
    if recent and settings.activity_points:
        earned = min(recent * settings.activity_points, settings.activity_max)
        noun = "activity" if recent == 1 else "activities"
        reasons.append({"points": earned, "why": f"{recent} {noun} in the last "
                        f"{settings.activity_days} days ({settings.activity_points} each, "
                        f"at most {settings.activity_max})"})
    return sum(r["points"] for r in reasons), reasons


def set_status(tx: Transaction, lead_id: int, status: str, reason: str | None) -> Lead:
    """Qualify or disqualify a lead; disqualifying needs a reason."""
    values.check_choice("status", status, ("qualified", "disqualified"))
    lead = get(tx, lead_id)
    why = values.text("reason", reason, required=status == "disqualified", max_length=500)
    if lead.status == "converted":
        raise Conflict(f"lead {lead.id} is already converted (customer {lead.customer_id})")
    if lead.status == status:
        raise Conflict(f"lead {lead.id} is already {status}")
    before = lead.status
    lead.status, lead.status_reason, lead.updated_at = status, why, utcnow()
    tx.session.flush()
    tx.audit("sales_lead", lead.id, status, {"before": {"status": before},
                                             "after": {"status": status, "reason": why}})
    tx.emit(f"sales.lead_{status}", {"lead_id": lead.id, "reason": why})
    return lead


@attrs.frozen
class Conversion:
    """What a conversion created."""

    lead_id: int
    customer_id: int
    contact_id: int | None
    opportunity_id: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def convert(tx: Transaction, lead_id: int, *, amount: Any = "0", currency: str | None = None,
            close_date: Any = None, title: str | None = None, owner: str | None = None
            ) -> Conversion:
    """Turn a lead into a customer (an organization with its contact, or a person) and an
    opportunity, copying the lead's history onto the customer's timeline.

    Runs inside the caller's transaction: any failure (here, in the kernel or in another
    plugin's hook) rolls back the customer, the contact and the opportunity together.
    """
    lead = get(tx, lead_id)
    if lead.status == "converted":
        raise Conflict(f"lead {lead.id} was already converted on "
                       f"{lead.converted_at:%Y-%m-%d} into customer {lead.customer_id} "
                       f"(opportunity {lead.opportunity_id})")
    if lead.status == "disqualified":
        raise Rejected(f"lead {lead.id} is disqualified ({lead.status_reason}); qualify it "
                       "before converting")
    settings = Settings.of(tx.crm)
    when = (values.date("close_date", close_date) if close_date is not None
            else (utcnow() + dt.timedelta(days=90)).date())
    money = values.money("amount", amount)
    code = values.currency(currency if currency is not None else settings.default_currency)
    who = owner or lead.owner
    _claim(tx, lead)
    person: Customer | None = None
    organization: Customer | None = None
    if lead.company:
        organization = tx.customers.create(
            kind="organization", name=lead.company, roles=["prospect"], status="prospect",
            email=None if lead.contact_name else lead.email,
            phone=None if lead.contact_name else lead.phone, owner=who)
    if lead.contact_name:
        person = tx.customers.create(
            kind="person", name=lead.contact_name, roles=["prospect"], status="prospect",
            email=lead.email, phone=lead.phone, owner=who)
        if organization is not None:
            tx.customers.add_contact(organization, person, role=lead.title or "contact")
    customer = organization or person
    assert customer is not None  # a lead has a company or a contact name
    _copy_history(tx, lead, customer)
    opp = opportunities.create(
        tx, customer=customer.id, title=title or f"{lead.display_name}: first deal",
        amount=money, currency=code, close_date=when, owner=who, lead_id=lead.id)
    now = utcnow()
    lead.status, lead.customer_id, lead.opportunity_id = "converted", customer.id, opp.id
    lead.contact_id = person.id if person is not None and organization is not None else None
    lead.converted_at = lead.updated_at = now
    tx.session.execute(update(Task).where(
        Task.lead_id == lead.id, Task.customer_id.is_(None)).values(customer_id=customer.id))
    tx.session.flush()
    result = Conversion(lead.id, customer.id, lead.contact_id, opp.id)
    tx.audit("sales_lead", lead.id, "convert", {"after": result.to_dict()})
    tx.emit("sales.lead_converted", {**result.to_dict(), "source": lead.source,
                                     "campaign": lead.campaign})
    return result


def _claim(tx: Transaction, lead: Lead) -> None:
    """Mark the lead as being converted, atomically: of two concurrent conversions one
    claims it and the other gets a :class:`Conflict` (the row lock makes it wait, then its
    condition no longer matches). Rolled back with everything else on failure."""
    claimed = tx.session.execute(
        update(Lead).where(Lead.id == lead.id, Lead.status == lead.status)
        .values(status="converting").execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"lead {lead.id} is being converted or changed by someone else; "
                       "reload and retry")


def _copy_history(tx: Transaction, lead: Lead, customer: Customer) -> None:
    """The lead's capture, qualification and logged activities, on the customer's timeline."""
    origin = f"from {lead.source}" + (f" (campaign {lead.campaign})" if lead.campaign else "")
    tx.interactions.log(customer, channel="system", kind="sales_activity",
                        occurred_at=lead.created_at, summary=f"Lead {lead.id} captured {origin}",
                        payload={"lead_id": lead.id, "event": "lead_captured"})
    done = tx.session.scalars(select(Task).where(
        Task.lead_id == lead.id, Task.status == "done").order_by(Task.done_at, Task.id))
    for task in done:
        interaction = tx.interactions.log(
            customer, channel=CHANNEL_OF[task.kind], kind="sales_activity",
            direction="outbound", occurred_at=task.done_at, actor=task.owner,
            summary=task.title + (f": {task.outcome}" if task.outcome else ""),
            payload={"lead_id": lead.id, "task_id": task.id, "event": task.kind})
        task.interaction_id = interaction.id
    if lead.status == "qualified":
        tx.interactions.log(customer, channel="system", kind="sales_activity",
                            occurred_at=lead.updated_at,
                            summary=f"Lead {lead.id} qualified"
                            + (f": {lead.status_reason}" if lead.status_reason else ""),
                            payload={"lead_id": lead.id, "event": "lead_qualified"})
    tx.interactions.log(customer, channel="system", kind="sales_activity",
                        summary=f"Lead {lead.id} converted into this customer",
                        payload={"lead_id": lead.id, "event": "lead_converted"})
