"""State machines: definitions (data, checked when they load) and the engine that runs
instances, their history and their timers."""

from crmkit.workflow.definition import (
    Timer,
    Transition,
    WorkflowDefinition,
    WorkflowRegistry,
    parse_definition,
)
from crmkit.workflow.engine import TimerResult, WorkflowRepository, fire_due_timers

__all__ = [
    "Timer",
    "TimerResult",
    "Transition",
    "WorkflowDefinition",
    "WorkflowRegistry",
    "WorkflowRepository",
    "fire_due_timers",
    "parse_definition",
]
