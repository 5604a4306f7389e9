"""The ``send_survey`` automation action: survey a customer when an event happens.

```toml
[[rules]]
name = "survey-after-claim"
on = "warranty.claim_closed"
do = "send_survey"
with = { survey = "claim-feedback", min_interval = "P90D" }
```

A customer invited to any survey within ``min_interval`` (default: the plugin's
``min_interval``, 90 days) is not invited again; the rule still counts as done.
"""

from __future__ import annotations

from typing import Any

from crmkit.criteria import parse_duration
from crmkit.rules import ActionContext

from crmkit_surveys import catalog
from crmkit_surveys.invitations import Recipient, send
from crmkit_surveys.settings import _DURATION, Settings

__all__ = ["SEND_SURVEY_SCHEMA", "send_survey"]

SEND_SURVEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["survey"],
    "properties": {
        "survey": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,59}$"},
        "min_interval": _DURATION,
        "expires_after": _DURATION,
    },
}


def send_survey(context: ActionContext) -> None:
    """Invite the event's customer to the published version of ``survey``."""
    params = context.params
    settings = Settings.of(context.crm)
    assert context.customer_id is not None  # registered with needs_customer=True
    interval = (parse_duration(params["min_interval"]) if "min_interval" in params
                else settings.min_interval)
    expires = parse_duration(params["expires_after"]) if "expires_after" in params else None
    with context.transaction() as tx:
        survey = catalog.get(tx.session, params["survey"], published=True)
        send(tx, survey, [Recipient(customer_id=context.customer_id,
                                    segment=f"rule:{context.rule.name}"[:100])],
             settings, expires_after=expires, min_interval=interval)
