#!/bin/sh
# A campaign from segment to ROI, on the kernel's sample data (customers 1-4).
# Run by `make demo` with `crmkit` on PATH, CRMKIT_CONFIG set and the plugin migrated.
set -eu

say() { printf '\n-- %s\n' "$*"; }

say "Segments: organizations that bought in the last year (at most one complaint), and newsletter readers"
crmkit campaigns segments add active-buyers --description "Organizations buying this year" \
    --criteria '{"all": [
        {"field": "customer.kind", "op": "eq", "value": "organization"},
        {"interactions": {"kind": "purchase", "within": "P365D"}, "op": "gte", "value": 1},
        {"interactions": {"kind": "complaint", "within": "P365D"}, "op": "lte", "value": 1}]}'
crmkit campaigns segments add newsletter \
    --criteria '{"field": "customer.tags", "op": "contains", "value": "newsletter"}'
crmkit campaigns segments preview active-buyers
crmkit campaigns segments freeze newsletter
crmkit campaigns segments list

say "Bad input is refused, nothing changes"
crmkit campaigns segments add typo --criteria '{"field": "customer.countyr", "op": "eq", "value": "LV"}' \
    || true
crmkit campaigns add BAD --name "Bad" --channel email --segment newsletter --currency EUX \
    --offer-kind discount --offer-value 10 --offer-starts 2026-12-31 --offer-ends 2026-12-01 || true

say "A campaign with an offer; Baltic Foods opted out of e-mail"
crmkit campaigns add WINTER26 --name "Winter sensors 2026" --channel email \
    --segment active-buyers --segment newsletter --budget 1500 --currency EUR \
    --starts 2026-11-01 --ends 2027-03-01 \
    --offer-kind discount --offer-value 15 --offer-code WINTER15 \
    --offer-terms "15% off cold-chain sensors" --offer-starts 2026-11-01 --offer-ends 2027-01-31
crmkit campaigns optout 3 --channel email
crmkit campaigns schedule WINTER26
crmkit campaigns launch WINTER26
say "Launching again sends to nobody twice"
crmkit campaigns launch WINTER26
crmkit campaigns members WINTER26
say "The sends wait in the outbox for channel plugins or webhook rules; deliver them"
crmkit events list --limit 2
crmkit events dispatch

say "Responses: an inquiry quoting the code, a purchase quoting the offer code, a CLI entry"
crmkit interactions log 4 --channel email --kind inquiry --summary "Question about WINTER15" \
    --payload '{"campaign": "WINTER26"}'
crmkit interactions log 1 --channel web --kind purchase --summary "Order SO-89001: 20 sensors" \
    --amount 4600.00 --currency EUR --payload '{"offer_code": "WINTER15"}'
crmkit campaigns respond WINTER26 4 opened
crmkit campaigns respond WINTER26 3 responded || true   # not a member: refused
crmkit campaigns cost WINTER26 900

say "Results"
crmkit campaigns complete WINTER26
crmkit campaigns report WINTER26
crmkit campaigns report WINTER26 --csv
crmkit interactions list 4
