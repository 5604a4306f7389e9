"""State machines: definitions (data, checked when they load) and the engine that runs
instances, their history and their timers."""

from crmkit.workflow.definition import (
    Timer,
    Transition,
    WorkflowDefinition,
    WorkflowRegistry,
    parse_definition,
)
from crmkit.workflow.engine import TIMER_ACTOR, TimerResult, WorkflowRepository, fire_due_timers

__all__ = [
    "TIMER_ACTOR",
    "Timer",
    "TimerResult",
    "Transition",
    "WorkflowDefinition",
    "WorkflowRegistry",
    "WorkflowRepository",
    "fire_due_timers",
    "parse_definition",
]
