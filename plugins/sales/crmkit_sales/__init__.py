"""crmkit-sales: sales force automation for crmkit.

Leads (capture, de-duplication, scoring, qualification, conversion), opportunities on the
``sales_pipeline`` workflow, follow-ups, and reports. This module holds ``PLUGIN_INFO`` and
the hook implementations; each hook hands over to a module with one concern:
:mod:`.settings`, :mod:`.pipeline`, :mod:`.leads`, :mod:`.opportunities`, :mod:`.tasks`,
:mod:`.reports`, :mod:`.imports`, :mod:`.privacy`, :mod:`.cli`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmkit import PluginInfo, hookimpl

from crmkit_sales import pipeline, privacy
from crmkit_sales.settings import CONFIG_SCHEMA, Settings

if TYPE_CHECKING:
    import datetime as dt

    from crmkit import Crm
    from crmkit.models import Customer, WorkflowInstance, WorkflowStep
    from crmkit.rules import ActionContext
    from crmkit.uow import Transaction
    from crmkit.workflow import Transition

__version__ = "0.1.0"

PLUGIN_INFO = PluginInfo(
    name="sales",
    version=__version__,
    kernel=">=0.1,<0.2",
    description="Sales force automation: leads, opportunities, pipeline, follow-ups, "
                "forecasts",
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: The payload of ``sales_activity`` interactions on a customer's timeline.
ACTIVITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "lead_id": {"type": "integer"},
        "opportunity_id": {"type": "integer"},
        "task_id": {"type": "integer"},
        "event": {"type": "string"},
    },
}

#: The ``with`` table of the ``sales_capture_lead`` action.
CAPTURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source"],
    "properties": {"source": {"type": "string"}, "campaign": {"type": "string"},
                   "owner": {"type": "string"}},
}


@hookimpl
def register_config_schema(register: Callable[..., None]) -> None:
    register(CONFIG_SCHEMA)


@hookimpl
def register_migrations(register: Callable[..., None]) -> None:
    register(MIGRATIONS)


@hookimpl
def register_workflows(register: Callable[..., None]) -> None:
    register(pipeline.PIPELINE, pipeline.DEFINITION)


@hookimpl
def register_interaction_kinds(register: Callable[..., None]) -> None:
    register("sales_activity", schema=ACTIVITY_SCHEMA,
             description="A sales activity: a call, meeting or e-mail, a lead's history, a "
                         "deal won or lost")


@hookimpl
def register_actions(register: Callable[..., None]) -> None:
    register("sales_capture_lead", capture_lead_action, schema=CAPTURE_SCHEMA,
             needs_customer=False,
             description="Capture a lead from the event's payload (contact_name, company, "
                         "email, phone, title, country, notes)")


@hookimpl
def register_criteria_fields(register: Callable[..., None]) -> None:
    from crmkit_sales.criteria import FIELDS

    for field in FIELDS:
        register(field)


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    # Imported here: the admin tool asks for commands only when it needs them.
    from crmkit_sales.cli import sales

    register(sales)


@hookimpl
def before_transition(tx: Transaction, instance: WorkflowInstance, transition: Transition,
                      data: dict[str, Any]) -> None:
    # Also guards `crmkit workflows fire`: a deal is never won or lost without a reason.
    if instance.workflow == pipeline.PIPELINE:
        pipeline.check_close(transition.target, data, Settings.of(tx.crm))


@hookimpl
def workflow_transitioned(tx: Transaction, instance: WorkflowInstance, step: WorkflowStep
                          ) -> None:
    if instance.workflow == pipeline.PIPELINE and instance.subject_type == pipeline.SUBJECT:
        from crmkit_sales import opportunities

        opportunities.on_transition(tx, instance.subject_id, step.to_state, step.data)


@hookimpl
def run_periodic(crm: Crm, now: dt.datetime) -> None:
    """Announce follow-ups that became overdue (``sales.task_overdue``, once each)."""
    from crmkit_sales import tasks

    with crm.transaction(actor="sales:periodic") as tx:
        tasks.notify_overdue(tx, now=now)


@hookimpl
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    return privacy.export(tx, customer)


@hookimpl
def erase_customer_data(tx: Transaction, customer: Customer) -> None:
    privacy.erase(tx, customer)


def capture_lead_action(context: ActionContext) -> None:
    """Automation action: a web form or campaign event becomes a lead (duplicates are
    skipped, so a redelivered event never captures twice)."""
    from crmkit import Conflict

    from crmkit_sales import leads

    record = {k: v for k, v in context.event.payload.items() if k in leads.FIELDS}
    record.update(context.params)
    with context.transaction() as tx:
        try:
            with tx.session.begin_nested():
                leads.capture(tx, record)
        except Conflict:
            return
