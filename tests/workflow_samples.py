"""Workflow definitions shared by the workflow, timer and CLI tests."""

from __future__ import annotations

from typing import Any

#: The integrator guide's example (docs/workflows.md), as config.
ONBOARDING: dict[str, Any] = {
    "description": "From a new prospect to an active customer",
    "subject": "customer",
    "initial": "new",
    "states": ["new", "contacted", "qualified", "active", "lost"],
    "final": ["active", "lost"],
    "transitions": [
        {"name": "contact", "from": "new", "to": "contacted"},
        {"name": "qualify", "from": "contacted", "to": "qualified",
         "guard": {"field": "customer.email", "op": "exists"}},
        {"name": "go_cold", "from": ["new", "contacted"], "to": "lost",
         "timer": {"after": "P30D"}},
        {"name": "win", "from": "qualified", "to": "active"},
    ],
}
