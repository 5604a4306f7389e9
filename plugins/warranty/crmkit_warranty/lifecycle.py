"""The claim lifecycle as a crmkit workflow (``warranty_claim``), with its SLA timers.

States: reported → triaged → (awaiting_parts →) repair | replace | refund → resolved →
closed; rejected from any state before a remedy. SLA deadlines are computed in business
days when the claim opens and stored in the instance's data (``triage_due_at``,
``resolution_due_at``); ``timer = {at = "data.<key>"}`` transitions fire at those moments.
An SLA timer is a transition from a state to itself (``triage_overdue``,
``resolution_overdue_<state>``): the claim keeps its state, the history shows the breach,
and the plugin emits ``warranty.sla_breached`` so automation rules can escalate.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ESCALATIONS", "OPEN_STATES", "REMEDIES", "WORKFLOW", "definition"]

WORKFLOW = "warranty_claim"
REMEDIES = ("repair", "replace", "refund")
OPEN_STATES = ("reported", "triaged", "awaiting_parts", *REMEDIES)
#: Escalation transition name -> (SLA name, data key of its deadline).
ESCALATIONS: dict[str, tuple[str, str]] = {
    "triage_overdue": ("triage", "triage_due_at"),
    **{f"resolution_overdue_{state}": ("resolution", "resolution_due_at")
       for state in OPEN_STATES},
}


def definition() -> dict[str, Any]:
    """The workflow document registered through ``register_workflows``."""
    transitions: list[dict[str, Any]] = [
        {"name": "triage", "from": "reported", "to": "triaged",
         "description": "Support has assessed the claim."},
        {"name": "order_parts", "from": "triaged", "to": "awaiting_parts",
         "description": "Waiting for spare parts."},
        *({"name": remedy, "from": ["triaged", "awaiting_parts"], "to": remedy,
           "description": f"Remedy chosen: {remedy}."} for remedy in REMEDIES),
        {"name": "resolve", "from": list(REMEDIES), "to": "resolved",
         "description": "The remedy is done."},
        {"name": "reopen", "from": "resolved", "to": "triaged",
         "description": "The customer says the defect persists."},
        {"name": "close", "from": "resolved", "to": "closed",
         "description": "The customer confirmed; nothing more to do."},
        {"name": "reject", "from": ["reported", "triaged", "awaiting_parts"], "to": "rejected",
         "description": "Not covered or not a defect; needs data.reason."},
        {"name": "triage_overdue", "from": "reported", "to": "reported",
         "timer": {"at": "data.triage_due_at"},
         "description": "SLA: not triaged in time (fired by the worker)."},
    ]
    transitions += [
        {"name": f"resolution_overdue_{state}", "from": state, "to": state,
         "timer": {"at": "data.resolution_due_at"},
         "description": "SLA: not resolved in time (fired by the worker)."}
        for state in OPEN_STATES
    ]
    return {
        "description": "A warranty claim from report to close",
        "subject": "warranty_claim",
        "initial": "reported",
        "states": [*OPEN_STATES, "resolved", "closed", "rejected"],
        "final": ["closed", "rejected"],
        "transitions": transitions,
    }
