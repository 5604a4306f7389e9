"""crmkit-campaigns: segments, campaigns with offers, launches, responses and ROI.

The plugin module: ``PLUGIN_INFO`` and the hook implementations. Each hook is a few lines
that hand over to a module with one concern: :mod:`.segments`, :mod:`.campaigns`,
:mod:`.launch`, :mod:`.responses`, :mod:`.consent`, :mod:`.report`, :mod:`.privacy`,
:mod:`.cli`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmkit import hookimpl
from crmkit.plugins import PluginInfo

from crmkit_campaigns import campaigns, launch, privacy, responses
from crmkit_campaigns.settings import CONFIG_SCHEMA

if TYPE_CHECKING:
    from crmkit import Crm, Event, Transaction
    from crmkit.models import Customer, Interaction, WorkflowInstance, WorkflowStep

__version__ = "0.1.0"

PLUGIN_INFO = PluginInfo(
    name="campaigns",
    version=__version__,
    kernel=">=0.1,<0.2",
    description="Marketing campaigns: segments, offers, launches, responses and ROI",
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: Events of other plugins this one listens to, by name (no import: they are optional).
OPPORTUNITY_WON = "sales.opportunity_won"


@hookimpl
def register_config_schema(register: Callable[..., None]) -> None:
    register(CONFIG_SCHEMA)


@hookimpl
def register_migrations(register: Callable[..., None]) -> None:
    register(MIGRATIONS)


@hookimpl
def register_workflows(register: Callable[..., None]) -> None:
    register("campaign", campaigns.WORKFLOW)


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    # Imported here: the admin tool asks for commands only when it needs them.
    from crmkit_campaigns.cli import campaigns_group

    register(campaigns_group)


@hookimpl
def workflow_transitioned(tx: Transaction, instance: WorkflowInstance,
                          step: WorkflowStep) -> None:
    """Keep ``Campaign.state`` in step; the ``launch`` transition launches."""
    if instance.workflow != "campaign" or instance.subject_type != campaigns.SUBJECT:
        return
    campaign = campaigns.find_instance_campaign(tx.session, instance.subject_id)
    if campaign is None:
        return
    campaign.state = instance.state
    if instance.closed_at is not None:
        campaign.closed_at = instance.closed_at
    tx.session.flush()
    if step.transition == "launch":
        result = launch.run(tx, campaign)
        tx.session.info.setdefault("campaigns.launches", []).append(result)


@hookimpl
def interaction_logged(tx: Transaction, interaction: Interaction) -> None:
    responses.from_interaction(tx, interaction)


@hookimpl
def handle_event(crm: Crm, event: Event) -> None:
    if event.name != OPPORTUNITY_WON:
        return
    with crm.transaction(actor="campaigns") as tx:
        responses.from_opportunity(tx, event.payload)


@hookimpl
def export_customer_data(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    return privacy.export(tx, customer.id)


@hookimpl
def erase_customer_data(tx: Transaction, customer: Customer) -> None:
    privacy.erase(tx, customer.id)
