"""crmkit-warranty: products, registered units, warranty claims as a workflow with SLA
timers, and defect analytics with threshold alerts.

The plugin module: ``PLUGIN_INFO`` and the hook implementations. Each hook is a few lines
that hand over to a module with one concern: :mod:`.catalog` (products), :mod:`.units`,
:mod:`.claims` and :mod:`.lifecycle` (the claim workflow), :mod:`.alerts`,
:mod:`.analytics` (reports), :mod:`.dsr` (data-subject rights), :mod:`.cli`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmkit import PluginInfo, hookimpl

from crmkit_warranty import claims, dsr, lifecycle
from crmkit_warranty.settings import CONFIG_SCHEMA

if TYPE_CHECKING:
    from crmkit.models import Customer, WorkflowInstance, WorkflowStep
    from crmkit.uow import Transaction
    from crmkit.workflow import Transition

__version__ = "0.1.0"

PLUGIN_INFO = PluginInfo(
    name="warranty",
    version=__version__,
    kernel=">=0.1,<0.2",
    description="Warranty: products, registered units, claims with SLAs, defect analytics",
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@hookimpl
def register_config_schema(register: Callable[..., None]) -> None:
    register(CONFIG_SCHEMA)


@hookimpl
def register_migrations(register: Callable[..., None]) -> None:
    register(MIGRATIONS)


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    # Imported here: the admin tool asks for commands only when it needs them.
    from crmkit_warranty.cli import warranty

    register(warranty)


@hookimpl
def register_workflows(register: Callable[..., None]) -> None:
    register(lifecycle.WORKFLOW, lifecycle.definition())


@hookimpl
def register_interaction_kinds(register: Callable[..., None]) -> None:
    register(claims.INTERACTION_KIND, claims.INTERACTION_SCHEMA,
             "A warranty claim step (opened, moved, SLA breached)")


@hookimpl
def before_transition(tx: Transaction, instance: WorkflowInstance, transition: Transition,
                      data: dict[str, Any]) -> None:
    claims.before_transition(tx, instance, transition, data)


@hookimpl
def workflow_transitioned(tx: Transaction, instance: WorkflowInstance,
                          step: WorkflowStep) -> None:
    claims.after_transition(tx, instance, step)


@hookimpl
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    return dsr.export(tx, customer.id)


@hookimpl
def erase_customer_data(tx: Transaction, customer: Customer) -> None:
    dsr.erase(tx, customer.id)
