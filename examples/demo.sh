#!/bin/sh
# Loads sample data into the deployment named by $CRMKIT_CONFIG with the admin tool, then
# shows what it holds. Run through `make demo`.
set -eu

say() { printf '\n== %s\n' "$*"; }
here=$(cd "$(dirname "$0")/.." && pwd)

# Every first-party plugin in the repository is installed (make venv); enable them all,
# then bring the database to head.
for dir in "$here"/plugins/*/; do
    [ -f "$dir/pyproject.toml" ] || continue
    name=$(basename "$dir")
    crmkit plugins enable "$name"
done
crmkit db upgrade

say "Customers"
crmkit customers add --kind organization --name "Acme GmbH" --email info@acme.example \
    --phone "+49 30 1234567" --tag key-account --tag manufacturing --owner alice \
    --ref erp=100042
crmkit customers add --kind person --name "Jana Novak" --email jana.novak@acme.example \
    --phone "+49 30 1234568" --owner alice
crmkit customers add-contact 1 2 --role buyer
crmkit customers add --kind organization --name "Baltic Foods SIA" --email hello@baltic.example \
    --role customer --role partner --tag retail --owner bob --ref erp=100077
crmkit customers add --kind person --name "Peteris Ozols" --email peteris@example.lv \
    --status prospect --role prospect --tag newsletter

say "Interactions"
crmkit interactions log 1 --channel phone --kind inquiry --direction inbound \
    --at 2026-09-02T09:15:00Z --summary "Asked for a quote on 40 control units"
crmkit interactions log 1 --channel email --kind offer --direction outbound \
    --at 2026-09-03T14:00:00Z --summary "Sent quote Q-2031 for 40 control units"
crmkit interactions log 1 --channel web --kind purchase --at 2026-09-20T10:30:00Z \
    --summary "Order SO-88231: 40 control units" --amount 18400.00 --currency EUR \
    --payload '{"order": "SO-88231", "items": 40}'
crmkit interactions log 1 --channel phone --kind complaint --at 2026-10-14T08:05:00Z \
    --summary "Two units stopped working after a firmware update"
crmkit interactions log 3 --channel visit --kind note --direction outbound \
    --at 2026-10-01T13:00:00Z --summary "Visited the Riga warehouse; interested in cold-chain sensors"
crmkit interactions log 3 --channel web --kind purchase --at 2026-10-22T16:45:00Z \
    --summary "Order SO-88410: 12 sensors" --amount 2760.00 --currency EUR

say "An update with optimistic locking (version 1 is current)"
crmkit customers update 4 --version 1 --status active --add-role customer --remove-role prospect

say "What the deployment holds"
crmkit customers list
say "Acme's timeline"
crmkit interactions list 1
say "Customer 1 in full"
crmkit customers show 1
say "Audit trail (latest 5)"
crmkit audit --limit 5
say "Outbox"
crmkit events list --limit 5
# Each plugin shows its part of the story with its own script.
for script in "$here"/plugins/*/demo.sh; do
    [ -f "$script" ] || continue
    say "Plugin $(basename "$(dirname "$script")")"
    sh "$script"
done

say "Health"
crmkit doctor
