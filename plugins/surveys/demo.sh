#!/bin/sh
# The surveys plugin's part of `make demo`: run by examples/demo.sh after the kernel's
# sample data (customers 1-4), with `crmkit` on PATH, CRMKIT_CONFIG set and the plugin
# enabled and migrated. Adds and publishes a survey, sends it, records responses and shows
# the NPS report; then an anonymous employee survey.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
say() { printf '\n-- %s\n' "$*"; }
# Tokens are 64 hex digits; pick the n-th from `surveys send --json` output.
token() { grep '"token"' "$1" | sed -n "${2}p" | sed 's/.*"token": "\([0-9a-f]*\)".*/\1/'; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say "Add the survey (TOML), publish version 1"
crmkit surveys add "$here/examples/service-feedback.toml"
crmkit surveys publish service-feedback
crmkit surveys show service-feedback

say "Send it to every customer (one unguessable link each; outbox event + timeline entry)"
crmkit surveys send service-feedback --customer 1 --customer 2 --customer 3 --customer 4 \
    --json > "$tmp/sent.json"
crmkit surveys list

say "Three customers answer; Acme (customer 1) is a detractor"
crmkit surveys respond "$(token "$tmp/sent.json" 1)" --answers \
    '{"recommend": 4, "why_low": "Two units failed after the firmware update", "satisfaction": 2, "effort": 3, "channel": "phone", "topics": ["repair"], "resolved": false}'
crmkit surveys respond "$(token "$tmp/sent.json" 2)" --answers \
    '{"recommend": 9, "satisfaction": 5, "effort": 6, "channel": "e-mail", "resolved": true, "aspects": {"friendliness": "good", "expertise": "good"}}'
crmkit surveys respond "$(token "$tmp/sent.json" 3)" --answers \
    '{"recommend": 10, "satisfaction": 4, "effort": 7, "channel": "portal", "topics": ["delivery"], "comment": "Quick and friendly"}'
say "Answering twice or out of range is refused, nothing changes"
crmkit surveys respond "$(token "$tmp/sent.json" 1)" --answers '{"recommend": 9}' || true
crmkit surveys respond "$(token "$tmp/sent.json" 4)" --answers '{"recommend": 11}' || true

say "Who would get a reminder (none yet: reminders wait remind_after, 3 days by default)"
crmkit surveys remind service-feedback --dry-run

say "The NPS report"
crmkit surveys report service-feedback
say "The same as CSV"
crmkit surveys report service-feedback --csv

say "Acme's timeline: the invitation and the feedback"
crmkit interactions list 1 --limit 3
say "The detractor event, for a follow-up rule or workflow"
crmkit events list --limit 40 | grep -E "^ID|surveys\." | head -8

say "An anonymous employee pulse survey (JSON), sent to a staff list"
cat > "$tmp/staff.csv" <<'CSV'
name,email,department,role
Ann,ann@corp.example,sales,lead
Bob,bob@corp.example,sales,staff
Cy,cy@corp.example,sales,staff
Dana,dana@corp.example,sales,staff
Eli,eli@corp.example,sales,staff
Fay,fay@corp.example,service,lead
Gus,gus@corp.example,service,staff
Hal,hal@corp.example,service,staff
Ida,ida@corp.example,service,staff
Jo,jo@corp.example,service,staff
Kim,kim@corp.example,it,staff
CSV
crmkit surveys add "$here/examples/pulse.json"
crmkit surveys publish pulse
crmkit surveys send pulse --employees "$tmp/staff.csv" --json > "$tmp/staff.json"
n=1
for score in 9 10 8 6 9 7 9 10 10 4 3; do
    crmkit surveys respond "$(token "$tmp/staff.json" $n)" --answers "{\"enps\": $score}" \
        > /dev/null
    n=$((n + 1))
done
say "By department (min_group_size 5): 'it' has 1 response and is hidden; 'sales' is hidden too, else all minus service would reveal it"
crmkit surveys report pulse --by department
