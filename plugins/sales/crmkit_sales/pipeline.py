"""The sales pipeline: a crmkit workflow whose instances are opportunities.

Registered as ``sales_pipeline`` through ``register_workflows``; integrators may extend or
replace it in ``crmkit.toml`` (``[workflows.sales_pipeline] mode = "extend"``). Each state's
probability and forecast category come from ``[plugin.sales.stages]``
(:class:`crmkit_sales.settings.Settings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import Issue, Rejected, ValidationError

if TYPE_CHECKING:
    from crmkit.workflow import WorkflowDefinition

    from crmkit_sales.settings import Settings

__all__ = ["DEFINITION", "PIPELINE", "SUBJECT", "check_close", "target_transition"]

PIPELINE = "sales_pipeline"
SUBJECT = "sales_opportunity"
OPEN_STAGES = ("qualification", "needs_analysis", "proposal", "negotiation")


def _definition() -> dict[str, Any]:
    transitions: list[dict[str, Any]] = []
    for index, stage in enumerate(OPEN_STAGES):
        sources = [OPEN_STAGES[i] for i in (index - 1, index + 1) if 0 <= i < len(OPEN_STAGES)]
        transitions.append({"name": f"to_{stage}", "from": sources, "to": stage,
                            "description": f"Move to {stage.replace('_', ' ')}"})
    transitions.append({"name": "win", "from": list(OPEN_STAGES), "to": "won",
                        "description": "Close as won (needs a reason)"})
    transitions.append({"name": "lose", "from": list(OPEN_STAGES), "to": "lost",
                        "description": "Close as lost (needs a configured lost reason)"})
    return {
        "description": "Sales opportunities from qualification to won or lost",
        "subject": SUBJECT,
        "initial": OPEN_STAGES[0],
        "states": [*OPEN_STAGES, "won", "lost"],
        "final": ["won", "lost"],
        "transitions": transitions,
    }


#: The default definition: one step forward or back between open stages, win or lose from
#: any open stage.
DEFINITION: dict[str, Any] = _definition()


def target_transition(definition: WorkflowDefinition, state: str, stage: str) -> str:
    """The transition that moves an opportunity from ``state`` to ``stage``."""
    if stage not in definition.states:
        raise ValidationError([Issue("stage", f"{stage!r} is not a stage of the pipeline; "
                                     f"stages: {', '.join(definition.states)}", stage)])
    for move in definition.available(state):
        if move.target == stage:
            return move.name
    allowed = sorted({m.target for m in definition.available(state)})
    raise Rejected(f"the pipeline does not allow moving from {state!r} to {stage!r}; "
                   f"from {state!r} it allows: {', '.join(allowed) or 'nothing (closed)'}")


def check_close(target: str, data: dict[str, Any], settings: Settings) -> None:
    """Winning and losing need a reason; losing needs one of the configured lost reasons."""
    if target not in (settings.won_stage, settings.lost_stage):
        return
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        verb = "winning" if target == settings.won_stage else "losing"
        raise ValidationError([Issue("reason", f"{verb} an opportunity needs a reason")])
    if target == settings.lost_stage and reason not in settings.lost_reasons:
        raise ValidationError([Issue("reason", f"{reason!r} is not a lost reason; "
                                     f"configured: {', '.join(settings.lost_reasons)}",
                                     reason)])
