"""``crmkit customers``: add, list, show and update customers."""

from __future__ import annotations

from typing import Any

import click

from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from crmkit.cli.params import KEY_VALUE
from crmkit.models import CUSTOMER_KINDS, CUSTOMER_STATUSES

ROLES = ("customer", "prospect", "partner", "supplier")
LIST_COLUMNS = ["id", "kind", "name", "email", "status", "tags", "version"]


@click.group()
def customers() -> None:
    """Customers: persons and organizations."""


@customers.command("add")
@click.option("--kind", type=click.Choice(CUSTOMER_KINDS), required=True)
@click.option("--name", required=True, help="Display name.")
@click.option("--email")
@click.option("--phone")
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES),
              help="Relationship role (repeatable; default: customer).")
@click.option("--status", type=click.Choice(CUSTOMER_STATUSES), default="active", show_default=True)
@click.option("--owner", help="The colleague responsible for the customer.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--attr", "attrs", multiple=True, type=KEY_VALUE,
              help="A custom field, KEY=VALUE; VALUE is JSON if it parses (repeatable).")
@click.option("--ref", "refs", multiple=True, type=KEY_VALUE,
              help="An external id, SYSTEM=ID (repeatable).")
@json_option
@pass_cli
def customers_add(cli: CliContext, kind: str, name: str, email: str | None, phone: str | None,
                  roles: tuple[str, ...], status: str, owner: str | None,
                  tags: tuple[str, ...], attrs: tuple[tuple[str, Any], ...],
                  refs: tuple[tuple[str, Any], ...], as_json: bool) -> None:
    """Add a customer."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        customer = tx.customers.create(
            kind=kind, name=name, email=email, phone=phone, roles=roles or ("customer",),
            status=status, owner=owner, tags=tags, attributes=dict(attrs),
            external_refs={system: str(ref) for system, ref in refs},
        )
        data = customer.to_dict()
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Added customer {data['id']}: {data['name']}")


@customers.command("list")
@click.option("--name", help="Names containing this text (case-insensitive).")
@click.option("--email", help="Exactly this e-mail (case-insensitive).")
@click.option("--tag", help="Customers with this tag.")
@click.option("--status", type=click.Choice(CUSTOMER_STATUSES))
@click.option("--kind", type=click.Choice(CUSTOMER_KINDS))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--after", type=int, help="Start after this id (from the previous page).")
@json_option
@pass_cli
def customers_list(cli: CliContext, name: str | None, email: str | None, tag: str | None,
                   status: str | None, kind: str | None, limit: int, after: int | None,
                   as_json: bool) -> None:
    """List customers, by id, a page at a time."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        page = tx.customers.list(name=name, email=email, tag=tag, status=status, kind=kind,
                                 limit=limit, after=after)
        rows = [c.to_dict() for c in page.items]
    if as_json:
        echo_json({"customers": rows, "next_after": page.next_after})
        return
    echo_table(rows, LIST_COLUMNS, "No customers match.")
    if page.next_after is not None:
        click.echo(f"More: --after {page.next_after}")


@customers.command("show")
@click.argument("customer_id", type=int)
@json_option
@pass_cli
def customers_show(cli: CliContext, customer_id: int, as_json: bool) -> None:
    """Show a customer with contacts, external ids and the latest interactions."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        customer = tx.customers.get(customer_id)
        data = customer.to_dict()
        data["external_refs"] = tx.customers.external_refs(customer)
        data["contacts"] = [
            {"id": person.id, "name": person.name, "role": role}
            for person, role in tx.customers.contacts(customer)
        ]
        data["latest_interactions"] = [
            i.to_dict() for i in tx.interactions.timeline(customer, limit=5)
        ]
    if as_json:
        echo_json(data)
        return
    latest = data.pop("latest_interactions")
    echo_record(data)
    if latest:
        click.echo("\nLatest interactions:")
        echo_table(latest, ["occurred_at", "channel", "kind", "summary"], "")


@customers.command("update")
@click.argument("customer_id", type=int)
@click.option("--version", "expected_version", type=int,
              help="The version you read; refuse if someone changed it since.")
@click.option("--name")
@click.option("--email")
@click.option("--phone")
@click.option("--status", type=click.Choice(CUSTOMER_STATUSES))
@click.option("--owner")
@click.option("--add-role", multiple=True, type=click.Choice(ROLES))
@click.option("--remove-role", multiple=True, type=click.Choice(ROLES))
@click.option("--add-tag", multiple=True)
@click.option("--remove-tag", multiple=True)
@click.option("--attr", "attrs", multiple=True, type=KEY_VALUE,
              help="Set a custom field, KEY=VALUE (repeatable).")
@click.option("--unset-attr", multiple=True, help="Remove a custom field (repeatable).")
@json_option
@pass_cli
def customers_update(cli: CliContext, customer_id: int, expected_version: int | None,
                     name: str | None, email: str | None, phone: str | None,
                     status: str | None, owner: str | None, add_role: tuple[str, ...],
                     remove_role: tuple[str, ...], add_tag: tuple[str, ...],
                     remove_tag: tuple[str, ...], attrs: tuple[tuple[str, Any], ...],
                     unset_attr: tuple[str, ...], as_json: bool) -> None:
    """Change a customer. Only the options given change; an empty --email clears it."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        customer = tx.customers.get(customer_id)
        changes: dict[str, Any] = {
            key: value
            for key, value in {"name": name, "email": email, "phone": phone,
                               "status": status, "owner": owner}.items()
            if value is not None
        }
        if add_role or remove_role:
            roles = [r for r in customer.roles if r not in remove_role]
            changes["roles"] = roles + [r for r in add_role if r not in roles]
        if add_tag or remove_tag:
            tags = [t for t in customer.tags if t not in remove_tag]
            changes["tags"] = tags + [t for t in add_tag if t not in tags]
        if attrs or unset_attr:
            unknown = [k for k in unset_attr if k not in customer.attributes]
            if unknown:
                raise click.BadParameter(f"customer {customer_id} has no attribute "
                                         f"{', '.join(unknown)}", param_hint="--unset-attr")
            attributes = {k: v for k, v in customer.attributes.items() if k not in unset_attr}
            attributes.update(dict(attrs))
            changes["attributes"] = attributes
        if not changes:
            raise click.UsageError("nothing to change: give at least one option")
        before = customer.version
        customer = tx.customers.update(customer, expected_version=expected_version, **changes)
        data = customer.to_dict()
    if as_json:
        echo_json(data)
    elif data["version"] == before:
        click.echo(f"Customer {customer_id} already had those values; nothing changed.")
    else:
        click.echo(f"Updated customer {customer_id} (now version {data['version']}).")


@customers.command("add-contact")
@click.argument("organization_id", type=int)
@click.argument("person_id", type=int)
@click.option("--role", default="contact", show_default=True, help="e.g. buyer, technical.")
@pass_cli
def customers_add_contact(cli: CliContext, organization_id: int, person_id: int,
                          role: str) -> None:
    """Link a person to an organization as one of its contacts."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        tx.customers.add_contact(tx.customers.get(organization_id), tx.customers.get(person_id),
                                 role)
    click.echo(f"Customer {person_id} is now a {role} of {organization_id}.")
