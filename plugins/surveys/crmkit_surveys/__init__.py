"""crmkit-surveys: customer and employee feedback surveys.

crmkit loads this module through the entry point in pyproject.toml. Each hook is a few
lines that hand over to a module with one concern:

* :mod:`.definition` and :mod:`.answers` — survey documents and answers, validated;
* :mod:`.catalog` — versions: add, publish (immutable afterwards);
* :mod:`.invitations` — audiences, tokens, sending and reminders;
* :mod:`.responses` and :mod:`.importer` — recording answers;
* :mod:`.scores` and :mod:`.reports` — NPS, CSAT, CES, distributions, groups;
* :mod:`.actions` — the ``send_survey`` automation action;
* :mod:`.privacy` — data-subject rights; :mod:`.cli` — ``crmkit surveys``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmkit import PluginInfo, hookimpl

from crmkit_surveys import privacy
from crmkit_surveys.settings import CONFIG_SCHEMA

if TYPE_CHECKING:
    import datetime as dt

    from crmkit import Crm
    from crmkit.models import Customer
    from crmkit.uow import Transaction

__version__ = "0.1.0"

PLUGIN_INFO = PluginInfo(
    name="surveys",
    version=__version__,
    kernel=">=0.1,<0.2",
    description="Customer and employee feedback surveys: NPS, CSAT, CES",
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: The payload of a ``survey_invitation`` interaction on the customer's timeline.
INVITATION_PAYLOAD: dict[str, Any] = {
    "type": "object",
    "required": ["survey", "version", "invitation_id"],
    "properties": {
        "survey": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "invitation_id": {"type": "integer"},
        "reminder": {"type": "integer", "minimum": 0},
    },
}


@hookimpl
def register_config_schema(register: Callable[..., None]) -> None:
    register(CONFIG_SCHEMA)


@hookimpl
def register_migrations(register: Callable[..., None]) -> None:
    register(MIGRATIONS)


@hookimpl
def register_interaction_kinds(register: Callable[..., None]) -> None:
    register("survey_invitation", schema=INVITATION_PAYLOAD,
             description="A survey invitation or reminder sent to the customer")


@hookimpl
def register_actions(register: Callable[..., None]) -> None:
    from crmkit_surveys.actions import SEND_SURVEY_SCHEMA, send_survey

    register("send_survey", send_survey, schema=SEND_SURVEY_SCHEMA,
             description="Invite the event's customer to a survey, at most once per period")


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    # Imported here: the admin tool asks for commands only when it needs them.
    from crmkit_surveys.cli import surveys

    register(surveys)


@hookimpl
def run_periodic(crm: Crm, now: dt.datetime) -> None:
    """Send the reminders that are due, for every survey with open invitations."""
    from sqlalchemy import select

    from crmkit_surveys import invitations
    from crmkit_surveys.models import Survey
    from crmkit_surveys.settings import Settings

    settings = Settings.of(crm)
    if not settings.auto_remind:
        return
    with crm.transaction(actor="surveys:reminders") as tx:
        for survey in tx.session.scalars(select(Survey).where(Survey.status != "draft")):
            invitations.remind(tx, survey, settings, now=now)


@hookimpl
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    return privacy.export(tx, customer.id)


@hookimpl
def erase_customer_data(tx: Transaction, customer: Customer) -> None:
    privacy.erase(tx, customer.id)
