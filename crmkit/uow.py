"""The unit of work: one database transaction, the repositories it exposes, its events.

::

    with crm.transaction(actor="alice") as tx:
        c = tx.customers.create(kind="organization", name="Acme GmbH")
        tx.interactions.log(c, channel="phone", kind="complaint", summary="Unit stopped")

Everything written inside the block (kernel rows, plugin rows, audit entries, outbox
events) commits together or not at all.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import String, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from crmkit.currencies import CURRENCIES
from crmkit.db import utcnow
from crmkit.errors import Conflict, Issue, NotFound, ValidationError, short_repr
from crmkit.models import (
    AuditEntry,
    Contact,
    Customer,
    CustomerTag,
    ExternalRef,
    Interaction,
    OutboxEvent,
    WorkflowInstance,
    WorkflowStep,
)
from crmkit.workflow.engine import WorkflowRepository

if TYPE_CHECKING:
    from crmkit.app import Crm

__all__ = [
    "AuditLog",
    "CustomerRepository",
    "InteractionRepository",
    "Page",
    "Transaction",
]

#: Fields of a customer record that callers may set (the shape of customer.schema.json).
CUSTOMER_FIELDS = (
    "kind", "name", "roles", "status", "email", "phone", "addresses", "owner", "tags",
    "attributes",
)
MAX_PAGE = 1000


def _jsonable(value: Any) -> Any:
    """``value`` in JSON types: times and dates as ISO 8601, money as a decimal string."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@attrs.frozen
class Page:
    """One page of a keyset-paginated listing; pass ``next_after`` for the next one."""

    items: list[Any]
    next_after: int | None


class Transaction:
    """One unit of work. Created by :meth:`crmkit.Crm.transaction`, never directly."""

    def __init__(self, crm: Crm, session: Session, actor: str) -> None:
        self.crm = crm
        self.session = session
        self.actor = actor
        self.event_ids: list[int] = []
        self._pending_events: list[OutboxEvent] = []
        self.customers = CustomerRepository(self)
        self.interactions = InteractionRepository(self)
        self.audit_log = AuditLog(self)
        self.workflows = WorkflowRepository(self)

    def emit(self, name: str, payload: Mapping[str, Any]) -> OutboxEvent:
        """Write a domain event to the outbox; it is delivered after this transaction commits."""
        event = OutboxEvent(name=name, payload=_jsonable(dict(payload)), actor=self.actor,
                            status="pending", attempts=0, delivered_to=[])
        self.session.add(event)
        self._pending_events.append(event)
        return event

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside this transaction: if the block raises, only what it wrote
        (rows, audit entries, events) is undone, and the exception propagates.

        For importers that skip bad records (``--on-error=skip``) without losing the good
        ones::

            for record in records:
                try:
                    with tx.savepoint():
                        tx.customers.create(**record)
                except crmkit.CrmkitError as exc:
                    rejects.append((record, exc))
        """
        mark = len(self._pending_events)
        nested = self.session.begin_nested()
        try:
            yield
        except BaseException:
            nested.rollback()
            del self._pending_events[mark:]
            raise
        nested.commit()

    def audit(self, entity: str, entity_id: Any, action: str, changes: Mapping[str, Any]) -> None:
        """Record who changed what, in this transaction."""
        self.session.add(
            AuditEntry(actor=self.actor, entity=entity, entity_id=str(entity_id), action=action,
                       changes=_jsonable(dict(changes)))
        )

    def _collect_event_ids(self) -> None:
        self.session.flush()
        self.event_ids = [event.id for event in self._pending_events]


class CustomerRepository:
    """Create, read, update and find customers inside a transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.session = tx.session

    # -- reading --------------------------------------------------------------------------

    def get(self, customer_id: int) -> Customer:
        """The customer with ``customer_id``; :class:`NotFound` if there is none."""
        _check_id("id", customer_id)
        customer = self.session.get(Customer, customer_id)
        if customer is None:
            raise NotFound(f"no customer with id {customer_id}")
        return customer

    def find_by_email(self, email: str) -> list[Customer]:
        """Customers whose e-mail is ``email`` (case-insensitive)."""
        normalized = _normalize_email(email)
        query = select(Customer).where(Customer.email == normalized).order_by(Customer.id)
        return list(self.session.scalars(query))

    def find_by_external_ref(self, system: str, external_id: str) -> Customer | None:
        """The customer that ``external_id`` in ``system`` points to, if any."""
        query = (
            select(Customer)
            .join(ExternalRef, ExternalRef.customer_id == Customer.id)
            .where(ExternalRef.system == system, ExternalRef.external_id == external_id)
        )
        return self.session.scalars(query).first()

    def list(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> Page:
        """Customers matching every filter given, by id, ``limit`` at a time.

        ``name`` matches a case-insensitive substring; wildcards in it are literal.
        """
        _check_limit(limit)
        issues = [Issue(key, f"must be a string, got {type(value).__name__}")
                  for key, value in (("name", name), ("email", email), ("tag", tag),
                                     ("status", status), ("kind", kind))
                  if value is not None and not isinstance(value, str)]
        if issues:
            raise ValidationError(issues, context="customer search")
        if after is not None:
            _check_id("after", after)
        query = select(Customer).order_by(Customer.id).limit(limit + 1)
        if name:
            query = query.where(
                func.lower(Customer.name).contains(name.lower()[:500], autoescape=True)
            )
        if email:
            query = query.where(Customer.email == _normalize_email(email))
        if tag:
            query = query.where(
                Customer.id.in_(select(CustomerTag.customer_id).where(CustomerTag.tag == tag))
            )
        if status:
            query = query.where(Customer.status == status)
        if kind:
            query = query.where(Customer.kind == kind)
        if after is not None:
            query = query.where(Customer.id > after)
        rows = list(self.session.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    def external_refs(self, customer: Customer) -> dict[str, str]:
        query = select(ExternalRef).where(ExternalRef.customer_id == customer.id)
        return {ref.system: ref.external_id for ref in self.session.scalars(query)}

    def contacts(self, organization: Customer) -> builtins.list[tuple[Customer, str]]:
        """The persons linked to ``organization``, with their roles."""
        query = (
            select(Customer, Contact.role)
            .join(Contact, Contact.person_id == Customer.id)
            .where(Contact.organization_id == organization.id)
            .order_by(Customer.name, Customer.id)
        )
        return [(row[0], row[1]) for row in self.session.execute(query)]

    # -- writing --------------------------------------------------------------------------

    def create(
        self,
        *,
        kind: str,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        roles: Sequence[str] = ("customer",),
        status: str = "active",
        addresses: Sequence[Mapping[str, Any]] = (),
        owner: str | None = None,
        tags: Sequence[str] = (),
        attributes: Mapping[str, Any] | None = None,
        external_refs: Mapping[str, str] | None = None,
    ) -> Customer:
        """Create a customer; validated, audited, announced as ``customer.created``.

        Everything is checked before the first row is written, so a refused customer (an
        invalid field, an external reference that belongs to someone else) leaves nothing
        behind even when the caller catches the error and goes on with the transaction.
        """
        values = _normalize({
            "kind": kind, "name": name, "roles": roles, "status": status,
            "email": email, "phone": phone, "addresses": addresses,
            "owner": owner, "tags": tags, "attributes": {} if attributes is None else attributes,
        })
        self.tx.crm.host.before_customer_save(tx=self.tx, values=values, customer=None)
        self.tx.crm.schemas.check_customer(values)
        refs = {} if external_refs is None else external_refs
        if not isinstance(refs, Mapping):
            raise ValidationError([Issue("external_refs", "must be a mapping of system to "
                                         f"external id, got {type(refs).__name__}")])
        for system, external_id in refs.items():
            self._check_external_ref(system, external_id)
        now = utcnow()
        customer = Customer(created_at=now, updated_at=now)
        _apply(customer, values)
        self.session.add(customer)
        self.session.flush()
        for system, external_id in refs.items():
            self._link(customer, system, external_id)
        self.tx.audit("customer", customer.id, "create", {"after": values})
        self.tx.emit("customer.created",
                     {"customer_id": customer.id, "customer": customer.to_dict()})
        self.tx.crm.host.customer_created(tx=self.tx, customer=customer)
        return customer

    def update(
        self, customer: Customer | int, *, expected_version: int | None = None, **changes: Any
    ) -> Customer:
        """Change fields of a customer.

        ``expected_version`` is the version the caller read; if the stored one differs, the
        update raises :class:`Conflict` and changes nothing (optimistic locking). A
        concurrent transaction that commits first also makes this one raise ``Conflict``.
        """
        if not isinstance(customer, int) and customer not in self.session:
            # A customer read in an earlier transaction: changing that detached copy would
            # write nothing. Load the stored one; the version the caller read is the one
            # they expect.
            if expected_version is None:
                expected_version = customer.version
            customer = customer.id
        if isinstance(customer, int):
            customer = self.get(customer)
        unknown = sorted(set(changes) - set(CUSTOMER_FIELDS))
        if unknown:
            raise ValidationError(
                [Issue(field, "unknown field; customers have " + ", ".join(CUSTOMER_FIELDS))
                 for field in unknown],
                context=f"customer {customer.id}",
            )
        if expected_version is not None and expected_version != customer.version:
            raise Conflict(
                f"customer {customer.id} was changed by someone else (it is at version "
                f"{customer.version}, you had version {expected_version}); reload and retry"
            )
        before = _values_of(customer)
        values = _normalize({**before, **changes})
        self.tx.crm.host.before_customer_save(tx=self.tx, values=values, customer=customer)
        self.tx.crm.schemas.check_customer(values, context=f"customer {customer.id}")
        diff = {k: (before[k], values[k]) for k in CUSTOMER_FIELDS if before[k] != values[k]}
        if not diff:
            return customer
        _apply(customer, values, only=diff)
        customer.updated_at = utcnow()
        self.session.flush()
        self.tx.audit(
            "customer", customer.id, "update",
            {"before": {k: old for k, (old, _) in diff.items()},
             "after": {k: new for k, (_, new) in diff.items()}},
        )
        self.tx.emit("customer.updated", {
            "customer_id": customer.id,
            "changes": {k: {"before": old, "after": new} for k, (old, new) in diff.items()},
        })
        self.tx.crm.host.customer_updated(tx=self.tx, customer=customer, changes=diff)
        return customer

    def add_external_ref(self, customer: Customer, system: str, external_id: str) -> ExternalRef:
        """Link ``customer`` to ``external_id`` in ``system`` (unique per system)."""
        self._check_external_ref(system, external_id)
        return self._link(customer, system, external_id)

    def _link(self, customer: Customer, system: str, external_id: str) -> ExternalRef:
        ref = ExternalRef(system=system, external_id=external_id, customer_id=customer.id)
        self.session.add(ref)
        self.session.flush()
        self.tx.audit("customer", customer.id, "link",
                      {"after": {"external_ref": {"system": system, "external_id": external_id}}})
        return ref

    def _check_external_ref(self, system: Any, external_id: Any) -> None:
        """Raise unless ``(system, external_id)`` is well-formed and still free."""
        issues = []
        if not isinstance(system, str) or not 1 <= len(system) <= 60:
            issues.append(Issue("system", "must be a string of 1 to 60 characters",
                                short_repr(system)))
        if not isinstance(external_id, str) or not 1 <= len(external_id) <= 200:
            issues.append(Issue("external_id", "must be a string of 1 to 200 characters",
                                short_repr(external_id)))
        if issues:
            raise ValidationError(issues, context="external reference")
        existing = self.find_by_external_ref(system, external_id)
        if existing is not None:
            raise Conflict(
                f"{system} id {external_id!r} already belongs to customer {existing.id}"
            )

    def add_contact(self, organization: Customer, person: Customer, role: str = "contact") -> None:
        """Link ``person`` to ``organization`` with ``role``."""
        if organization.kind != "organization" or person.kind != "person":
            raise ValidationError(
                [Issue("contact", "contacts link a person to an organization")]
            )
        if not isinstance(role, str) or not 1 <= len(role) <= 100:
            raise ValidationError([Issue("role", "must be a string of 1 to 100 characters")])
        if self.session.get(Contact, (organization.id, person.id)) is not None:
            raise Conflict(f"customer {person.id} is already a contact of {organization.id}")
        self.session.add(Contact(organization_id=organization.id, person_id=person.id, role=role))
        self.session.flush()
        self.tx.audit("customer", organization.id, "add_contact",
                      {"after": {"person_id": person.id, "role": role}})
        self.tx.emit("customer.contact_added",
                     {"organization_id": organization.id, "person_id": person.id, "role": role})

    # -- data-subject rights --------------------------------------------------------------

    def export_data(self, customer: Customer | int) -> dict[str, Any]:
        """Everything every plugin holds about the customer, by plugin name."""
        customer = self.get(customer if isinstance(customer, int) else customer.id)
        return dict(self.tx.crm.host.export_customer_data(tx=self.tx, customer=customer))

    def erase(self, customer: Customer | int) -> Customer:
        """Erase the person's data: every plugin erases its part, then the kernel
        anonymises the customer, its interactions, its references and its audit trail.

        The customer row stays (as ``erased customer <id>``, archived) so that aggregates
        and other records that point at it keep working; the audit keeps that an erasure
        happened and by whom, not the data.
        """
        customer = self.get(customer if isinstance(customer, int) else customer.id)
        self.tx.crm.host.erase_customer_data(tx=self.tx, customer=customer)
        cid = customer.id
        customer.name = f"erased customer {cid}"
        customer.email = customer.phone = customer.owner = None
        customer.addresses, customer.attributes, customer.tag_rows = [], {}, []
        customer.status = "archived"
        customer.updated_at = utcnow()
        session = self.session
        interaction_ids = select(Interaction.id).where(Interaction.customer_id == cid)
        session.execute(update(Interaction).where(Interaction.customer_id == cid)
                        .values(summary="(erased)", payload={})
                        .execution_options(synchronize_session=False))
        session.execute(delete(ExternalRef).where(ExternalRef.customer_id == cid))
        session.execute(delete(Contact).where(or_(Contact.organization_id == cid,
                                                  Contact.person_id == cid)))
        session.execute(update(AuditEntry).where(or_(
            and_(AuditEntry.entity == "customer", AuditEntry.entity_id == str(cid)),
            and_(AuditEntry.entity == "interaction",
                 AuditEntry.entity_id.in_(select(func.cast(interaction_ids.subquery().c.id,
                                                           String)))),
        )).values(changes={"erased": True}).execution_options(synchronize_session=False))
        instances = select(WorkflowInstance.id).where(WorkflowInstance.customer_id == cid)
        session.execute(update(WorkflowStep).where(WorkflowStep.instance_id.in_(instances))
                        .values(data={}).execution_options(synchronize_session=False))
        session.execute(update(WorkflowInstance).where(WorkflowInstance.customer_id == cid)
                        .values(data={}).execution_options(synchronize_session=False))
        session.execute(update(OutboxEvent).where(
            OutboxEvent.payload["customer_id"].as_integer() == cid
        ).values(payload={"customer_id": cid, "erased": True})
            .execution_options(synchronize_session=False))
        session.flush()
        self.tx.audit("customer", cid, "erase", {"erased": True})
        self.tx.emit("customer.erased", {"customer_id": cid})
        return customer


def _check_id(field: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError([Issue(field, f"must be an integer, got {short_repr(value)}")])


def _check_limit(limit: Any) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        shown = limit if isinstance(limit, int) else short_repr(limit)
        raise ValidationError([Issue("limit", f"must be between 1 and {MAX_PAGE}", shown)])


def _normalize_email(email: str) -> str:
    return email.strip().lower()


def _normalize(values: dict[str, Any]) -> dict[str, Any]:
    """Trim strings and lower-case the e-mail; empty optional strings become ``None``."""
    for key in ("name", "email", "phone", "owner"):
        value = values.get(key)
        if isinstance(value, str):
            value = value.strip()
            if key != "name" and not value:
                value = None
            values[key] = value
    if isinstance(values.get("email"), str):
        values["email"] = values["email"].lower()
    # Copy sequences into lists and mappings into dicts, but leave any other type alone: a
    # string is not a list of tags (list("vip") would be three tags), [] is not an empty
    # attributes object. The schema then names the field with the wrong type.
    for key in ("roles", "tags", "addresses"):
        if isinstance(values.get(key), (list, tuple)):
            values[key] = list(values[key])
    if isinstance(values.get("addresses"), list):
        values["addresses"] = [dict(a) if isinstance(a, Mapping) else a
                               for a in values["addresses"]]
    if isinstance(values.get("attributes"), Mapping):
        values["attributes"] = dict(values["attributes"])
    # Tags are a set, stored one row each and read back in order: keep them sorted so that
    # the same tags in another order are not a change.
    tags = values.get("tags")
    if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
        values["tags"] = sorted(tags)
    return values


def _values_of(customer: Customer) -> dict[str, Any]:
    return {
        "kind": customer.kind, "name": customer.name, "roles": list(customer.roles or []),
        "status": customer.status, "email": customer.email, "phone": customer.phone,
        "addresses": [dict(a) for a in customer.addresses or []], "owner": customer.owner,
        "tags": customer.tags, "attributes": dict(customer.attributes or {}),
    }


def _apply(
    customer: Customer, values: Mapping[str, Any], only: Iterable[str] | None = None
) -> None:
    for key in only if only is not None else CUSTOMER_FIELDS:
        if key == "tags":
            customer.tag_rows = [CustomerTag(tag=tag) for tag in values["tags"]]
        else:
            setattr(customer, key, values[key])


class InteractionRepository:
    """Log interactions and read a customer's timeline inside a transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.session = tx.session

    def get(self, interaction_id: int) -> Interaction:
        """The interaction with ``interaction_id``; :class:`NotFound` if there is none."""
        _check_id("id", interaction_id)
        interaction = self.session.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFound(f"no interaction with id {interaction_id}")
        return interaction

    def log(
        self,
        customer: Customer | int,
        *,
        channel: str,
        kind: str,
        summary: str,
        direction: str = "inbound",
        occurred_at: dt.datetime | str | None = None,
        payload: Mapping[str, Any] | None = None,
        actor: str | None = None,
        amount: Decimal | str | int | None = None,
        currency: str | None = None,
    ) -> Interaction:
        """Add an interaction to the customer's timeline; validated, audited, announced."""
        if isinstance(customer, int):
            customer = self.tx.customers.get(customer)
        when = _parse_time(occurred_at)
        record: dict[str, Any] = {
            "channel": channel, "direction": direction, "kind": kind,
            "summary": summary.strip() if isinstance(summary, str) else summary,
            "payload": {} if payload is None else dict(payload) if isinstance(payload, Mapping)
            else payload,
            "actor": actor if actor is not None else self.tx.actor,
        }
        if when is not None:
            record["occurred_at"] = when.isoformat()
        if amount is not None:
            record["amount"] = _amount_text(amount)
        if currency is not None:  # absent, not null, so that an amount requires a currency
            record["currency"] = currency
        context = f"interaction for customer {customer.id}"
        self.tx.crm.schemas.check_interaction(record, context=context)
        if record.get("currency") is not None and record["currency"] not in CURRENCIES:
            raise ValidationError(
                [Issue("currency", f"{record['currency']!r} is not an ISO 4217 currency code",
                       record["currency"])],
                context=context,
            )
        interaction = Interaction(
            customer_id=customer.id, channel=channel, direction=direction, kind=kind,
            occurred_at=when or utcnow(), summary=record["summary"], payload=record["payload"],
            actor=record["actor"],
            amount=Decimal(record["amount"]) if amount is not None else None,
            currency=record.get("currency"),
        )
        self.session.add(interaction)
        self.session.flush()
        data = interaction.to_dict()
        self.tx.audit("interaction", interaction.id, "create", {"after": data})
        self.tx.emit("interaction.logged", {"interaction_id": interaction.id,
                                            "customer_id": customer.id, "interaction": data})
        self.tx.crm.host.interaction_logged(tx=self.tx, interaction=interaction)
        return interaction

    def timeline(
        self,
        customer: Customer | int,
        *,
        limit: int = 50,
        before: tuple[dt.datetime, int] | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[Interaction]:
        """The customer's interactions, newest first, ``limit`` at a time.

        ``before`` is the ``(occurred_at, id)`` of the last row of the previous page.
        """
        customer_id = customer if isinstance(customer, int) else customer.id
        if isinstance(customer_id, bool) or not isinstance(customer_id, int):
            raise ValidationError([Issue("customer", "must be a customer or its integer id, "
                                         f"got {short_repr(customer)}")])
        _check_limit(limit)
        if before is not None and not (
            isinstance(before, (tuple, list)) and len(before) == 2
            and isinstance(before[0], dt.datetime) and before[0].tzinfo is not None
            and isinstance(before[1], int) and not isinstance(before[1], bool)
        ):
            raise ValidationError([Issue(
                "before", "must be the (occurred_at, id) of the last row of the previous page, "
                f"with a timezone-aware occurred_at; got {short_repr(before)}")])
        query = (
            select(Interaction)
            .where(Interaction.customer_id == customer_id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(limit)
        )
        if before is not None:
            at, last_id = before
            query = query.where(
                or_(Interaction.occurred_at < at,
                    and_(Interaction.occurred_at == at, Interaction.id < last_id))
            )
        if kinds:
            query = query.where(Interaction.kind.in_(list(kinds)))
        rows = list(self.session.scalars(query))
        if not rows and isinstance(customer, int):
            self.tx.customers.get(customer_id)  # an empty page: say so if there is no customer
        return rows


def _parse_time(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                [Issue("occurred_at", f"{short_repr(value)} is not an ISO 8601 date-time")]
            ) from None
    if not isinstance(value, dt.datetime):
        raise ValidationError(
            [Issue("occurred_at", f"must be a date-time, got {type(value).__name__}")]
        )
    if value.tzinfo is None:
        raise ValidationError(
            [Issue("occurred_at", "has no time zone; give an offset such as +00:00 or Z")]
        )
    return value.astimezone(dt.UTC)


def _amount_text(amount: Any) -> Any:
    if isinstance(amount, float):
        raise ValidationError(
            [Issue("amount", "must be a Decimal or a string, never a float (money loses cents)")]
        )
    if isinstance(amount, bool):
        return amount
    if isinstance(amount, (int, Decimal)):
        try:
            return format(Decimal(amount), "f")
        except InvalidOperation:
            return str(amount)
    return amount


class AuditLog:
    """Read the audit trail."""

    def __init__(self, tx: Transaction) -> None:
        self.session = tx.session

    def list(
        self,
        *,
        entity: str | None = None,
        entity_id: Any = None,
        actor: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> list[AuditEntry]:
        """Audit entries, newest first."""
        _check_limit(limit)
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if entity:
            query = query.where(AuditEntry.entity == entity)
        if entity_id is not None:
            query = query.where(AuditEntry.entity_id == str(entity_id))
        if actor:
            query = query.where(AuditEntry.actor == actor)
        if before is not None:
            query = query.where(AuditEntry.id < before)
        return list(self.session.scalars(query))
