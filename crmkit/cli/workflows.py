"""``crmkit workflows``: definitions, instances, history, and firing transitions."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import func, select

from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from crmkit.cli.params import JSON_OBJECT
from crmkit.models import TIMER_STATUSES, WorkflowInstance, WorkflowTimer
from crmkit.workflow import fire_due_timers


@click.group()
def workflows() -> None:
    """Workflows: state machines over customers and plugins' records."""


@workflows.command("list")
@json_option
@pass_cli
def workflows_list(cli: CliContext, as_json: bool) -> None:
    """List the workflows this deployment defines (plugins and config)."""
    rows = [
        {"name": d.name, "subject": d.subject, "initial": d.initial, "states": len(d.states),
         "transitions": len(d.transitions), "owner": d.owner, "description": d.description}
        for d in cli.crm.workflows.all()
    ]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["name", "subject", "initial", "states", "transitions", "owner"],
                   "No workflows are defined (see docs/workflows.md).")


@workflows.command("show")
@click.argument("name")
@json_option
@pass_cli
def workflows_show(cli: CliContext, name: str, as_json: bool) -> None:
    """Show a workflow: its states (with how many instances are in each) and transitions."""
    definition = cli.crm.workflows.get(name)
    with cli.crm.session() as session:
        counts = {k: n for k, n in session.execute(
            select(WorkflowInstance.state, func.count())
            .where(WorkflowInstance.workflow == name).group_by(WorkflowInstance.state))}
    data = definition.to_dict()
    data["instances"] = {state: counts.get(state, 0) for state in definition.states}
    if as_json:
        echo_json(data)
        return
    echo_record({k: data[k] for k in ("name", "subject", "description", "owner", "initial")})
    click.echo("\nStates:")
    echo_table([{"state": s, "final": "yes" if s in definition.final else "",
                 "instances": data["instances"][s]} for s in definition.states],
               ["state", "final", "instances"], "")
    click.echo("\nTransitions:")
    echo_table([{**t, "from": t["from"], "guard": t["guard"], "timer": t["timer"]}
                for t in data["transitions"]],
               ["name", "from", "to", "guard", "timer"], "none")


@workflows.command("instances")
@click.option("--workflow", help="Only this workflow.")
@click.option("--state", help="Only instances in this state.")
@click.option("--customer", "customer_id", type=int, help="Only this customer's.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--after", type=int, help="Start after this instance id (paging).")
@json_option
@pass_cli
def workflows_instances(cli: CliContext, workflow: str | None, state: str | None,
                        customer_id: int | None, limit: int, after: int | None,
                        as_json: bool) -> None:
    """List workflow instances."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        page = tx.workflows.list(workflow=workflow, state=state, customer_id=customer_id,
                                 limit=limit, after=after)
        rows = [i.to_dict() for i in page.items]
    if as_json:
        echo_json({"instances": rows, "next_after": page.next_after})
        return
    echo_table(rows, ["id", "workflow", "subject_type", "subject_id", "customer_id", "state",
                      "state_entered_at", "version"], "No instances match.")
    if page.next_after is not None:
        click.echo(f"More: --after {page.next_after}")


@workflows.command("start")
@click.argument("workflow")
@click.argument("customer_id", type=int)
@click.option("--data", type=JSON_OBJECT, help="Initial instance data, a JSON object.")
@json_option
@pass_cli
def workflows_start(cli: CliContext, workflow: str, customer_id: int,
                    data: dict[str, Any] | None, as_json: bool) -> None:
    """Start WORKFLOW for a customer."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        instance = tx.workflows.start(workflow, customer=customer_id, data=data)
        result = instance.to_dict()
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Started {workflow} instance {result['id']} in state {result['state']}.")


@workflows.command("history")
@click.argument("instance_id", type=int)
@json_option
@pass_cli
def workflows_history(cli: CliContext, instance_id: int, as_json: bool) -> None:
    """Every step of an instance: from, to, transition, actor, time, data."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        instance = tx.workflows.get(instance_id).to_dict()
        steps = [s.to_dict() for s in tx.workflows.history(instance_id)]
    if as_json:
        echo_json({"instance": instance, "steps": steps})
        return
    click.echo(f"{instance['workflow']} instance {instance_id} for {instance['subject_type']} "
               f"{instance['subject_id']}: now {instance['state']}")
    echo_table(steps, ["at", "transition", "from", "to", "actor", "data"], "No steps.")


@workflows.command("fire")
@click.argument("instance_id", type=int)
@click.argument("transition")
@click.option("--data", type=JSON_OBJECT, help="Data for the transition, a JSON object.")
@click.option("--version", "expected_version", type=int,
              help="The instance version you read; refuse if it moved on since.")
@json_option
@pass_cli
def workflows_fire(cli: CliContext, instance_id: int, transition: str,
                   data: dict[str, Any] | None, expected_version: int | None,
                   as_json: bool) -> None:
    """Fire TRANSITION on an instance; refused unless its workflow allows it now."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        step = tx.workflows.fire(instance_id, transition, data=data,
                                 expected_version=expected_version).to_dict()
    if as_json:
        echo_json(step)
    else:
        click.echo(f"Instance {instance_id}: {step['transition']} {step['from']} → {step['to']}.")


@workflows.command("timers")
@click.option("--status", type=click.Choice(TIMER_STATUSES), default="pending",
              show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--fire-due", is_flag=True, help="Fire every due timer now, then list.")
@json_option
@pass_cli
def workflows_timers(cli: CliContext, status: str, limit: int, fire_due: bool,
                     as_json: bool) -> None:
    """List workflow timers, soonest first (the worker fires them when due)."""
    if fire_due:
        result = fire_due_timers(cli.crm)
        click.echo(f"Timers fired {result.fired}, failed {result.failed}.", err=True)
    with cli.crm.session() as session:
        rows = [
            {"id": t.id, "instance_id": t.instance_id, "transition": t.transition,
             "due_at": t.due_at.isoformat(), "status": t.status,
             "fired_at": t.fired_at.isoformat() if t.fired_at else None, "error": t.error}
            for t in session.scalars(
                select(WorkflowTimer).where(WorkflowTimer.status == status)
                .order_by(WorkflowTimer.due_at, WorkflowTimer.id).limit(limit))
        ]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "instance_id", "transition", "due_at", "status", "error"],
                   f"No {status} timers.")
