#!/bin/sh
# The sales plugin's part of `make demo`: leads, a pipeline, a won deal and a forecast.
# Runs after examples/demo.sh loaded customers 1-4 (1 Acme GmbH, 3 Baltic Foods SIA), with
# `crmkit` on PATH, CRMKIT_CONFIG set and the plugin enabled and migrated.
set -eu

say() { printf '\n-- %s\n' "$*"; }

say "Leads: captured by hand, de-duplicated against customers and leads"
crmkit sales leads add --company "Nordwerk AG" --contact-name "Lena Brandt" --title buyer \
    --email lena.brandt@nordwerk.example --phone "+49 40 555010" --country DE \
    --source referral --campaign fair-2026 --owner alice
crmkit sales leads add --contact-name "Marta Kalnina" --email marta@example.lv --source web \
    --owner bob
if ! crmkit sales leads add --company "Acme GmbH" --source web; then
    echo "(refused: Acme GmbH is already a customer)"
fi

say "A discovery call with the Nordwerk lead, then its score and why"
crmkit sales tasks add --kind call --title "Discovery call" --due 2026-11-20T10:00:00Z \
    --owner alice --lead 1
crmkit sales tasks done 1 --outcome "needs 60 sensors and installation"
crmkit sales leads show 1

say "Qualify and convert: customer, contact and opportunity in one transaction"
crmkit sales leads qualify 1 --reason "budget approved for Q1"
crmkit sales leads convert 1 --amount 30000 --currency EUR --close-date 2027-01-20 \
    --title "Nordwerk cold-chain sensors"
crmkit sales leads list

say "More opportunities for existing customers (lines make the amount)"
crmkit sales opps add --customer 1 --title "Control units, 2nd batch" --currency EUR \
    --close-date 2026-12-18 --owner alice \
    --line "products:40:460.00:Control unit CU-4" --line "services:1:2000.00:Installation"
crmkit sales opps add --customer 3 --title "Shelf-edge advertising" --amount 6500 \
    --currency EUR --close-date 2026-12-05 --owner bob
crmkit sales opps add --customer 3 --title "Warehouse sensors" --amount 9800 \
    --currency EUR --close-date 2027-02-10 --owner bob

say "Working the pipeline"
crmkit sales opps move 1 needs_analysis
crmkit sales opps move 1 proposal
crmkit sales opps move 2 needs_analysis
crmkit sales opps move 2 proposal
crmkit sales opps move 2 negotiation
if ! crmkit sales opps move 3 negotiation; then
    echo "(refused: the pipeline moves one stage at a time)"
fi
if ! crmkit sales opps win 2 --reason ""; then
    echo "(refused: winning needs a reason)"
fi
crmkit sales opps win 2 --reason "Best delivery time and local service"
crmkit sales opps lose 3 --reason price
crmkit sales opps list
crmkit sales opps show 2

say "Follow-ups; overdue ones are announced as sales.task_overdue"
crmkit sales tasks add --kind email --title "Send the Nordwerk proposal" --due 2026-11-01 \
    --owner alice --opportunity 1
crmkit sales tasks add --kind meeting --title "Warehouse visit" --due 2027-01-12T09:00:00Z \
    --owner bob --opportunity 4
crmkit sales tasks list --overdue

say "Report: pipeline by stage and owner"
crmkit sales report pipeline
say "Report: weighted forecast by month and category"
crmkit sales report forecast
say "Report: forecast by quarter, as CSV"
crmkit sales report forecast --period quarter --csv
say "Report: win rate and sales cycle"
crmkit sales report win-rate
say "Report: sales by domain"
crmkit sales report by-domain --period quarter --json
