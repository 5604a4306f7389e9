"""The kernel's own contributions, registered as the plugin ``crmkit`` (devpi's pattern:
core features use the same hooks as everyone else)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from crmkit.models import AuditEntry, Interaction
from crmkit.plugins import PluginInfo, hookimpl

if TYPE_CHECKING:
    from crmkit.models import Customer
    from crmkit.uow import Transaction

PLUGIN_INFO = PluginInfo(name="crmkit", description="The kernel's channels, kinds and data.")

CHANNELS = {
    "phone": "A telephone call",
    "email": "An e-mail",
    "meeting": "A meeting in person",
    "visit": "A visit at the customer's site or ours",
    "letter": "A letter or parcel by post",
    "chat": "A chat or instant message",
    "video": "A video call",
    "web": "A web form or the web shop",
    "self_service": "The customer's self-service portal",
    "sms": "A text message",
    "social": "A social network",
    "system": "Recorded by a system (ERP, connector, automation)",
}

KINDS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "purchase": ("The customer bought something (amount and currency feed analytics)", None),
    "inquiry": ("A question or a request for information", None),
    "support": ("A support request", None),
    "complaint": ("A complaint", None),
    "feedback": ("Feedback, a survey answer, a review", None),
    "note": ("A note about the customer", None),
    "offer": ("An offer or quote sent to the customer", None),
    "marketing": ("A marketing message", None),
}


@hookimpl
def register_channels(register: Callable[..., None]) -> None:
    for name, description in CHANNELS.items():
        register(name, description=description)


@hookimpl
def register_interaction_kinds(register: Callable[..., None]) -> None:
    for name, (description, schema) in KINDS.items():
        register(name, schema=schema, description=description)


@hookimpl
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any]:
    session = tx.session
    interactions = session.scalars(
        select(Interaction).where(Interaction.customer_id == customer.id).order_by(Interaction.id)
    )
    audit = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == "customer", AuditEntry.entity_id == str(customer.id))
        .order_by(AuditEntry.id)
    )
    return {
        "customer": customer.to_dict(),
        "external_refs": tx.customers.external_refs(customer),
        "contacts": [
            {"person_id": person.id, "role": role}
            for person, role in tx.customers.contacts(customer)
        ],
        "interactions": [i.to_dict() for i in interactions],
        "audit": [entry.to_dict() for entry in audit],
    }
