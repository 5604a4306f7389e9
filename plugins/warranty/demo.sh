#!/bin/sh
# crmkit-warranty's part of `make demo`: runs after the kernel's sample data (customers 1-4)
# with `crmkit` on PATH, CRMKIT_CONFIG set and the plugin enabled and migrated.
# Acme (customer 1) bought 40 control units; two of them failed. We register them, open
# and move claims, and watch the defect report and the threshold alert.
set -eu

say() { printf '\n-- %s\n' "$*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A purchase 10 days ago (GNU date, then BSD date): inside the default alert window.
bought=$(date -u -d '10 days ago' +%Y-%m-%d 2>/dev/null || date -u -v-10d +%Y-%m-%d)

say "Products (import is idempotent: a second run reports them unchanged)"
cat > "$work/products.csv" <<CSV
sku,name,product_line,warranty_months,extended_months
CU-40,Control unit CU-40,controls,24,12
CS-12,Cold-chain sensor CS-12,sensors,12,
CSV
crmkit warranty products import "$work/products.csv"
crmkit warranty products add CU-50 --name "Control unit CU-50" --line controls \
    --warranty-months 24 --extended-months 24
crmkit warranty products list

say "Units: Acme's 25 control units of lot L2611 (each logs a purchase on the timeline)"
{
    echo "sku,serial,customer_id,purchase_date,batch,extended"
    i=1
    while [ "$i" -le 25 ]; do
        printf 'CU-40,CU40-%04d,1,%s,L2611,\n' "$i" "$bought"
        i=$((i + 1))
    done
} > "$work/units.csv"
crmkit warranty units import "$work/units.csv"
crmkit warranty units register CS-12 CS12-0007 --customer 3 --purchased 2026-10-22 \
    --batch S-0926 --channel web
crmkit warranty units register CU-50 CU50-0001 --customer 2 --purchased 2026-09-20 \
    --batch L2609 --extended
crmkit warranty units transfer CU-50 CU50-0001 --to 1
crmkit warranty units show CU-50 CU50-0001

say "A claim: unit CU40-0007 stopped after a firmware update (1 of 25 = 4% > 3%: alert)"
crmkit warranty claims codes
crmkit warranty claims open CU-40 --serial CU40-0007 --defect firmware --channel phone \
    --description "Stopped working after the firmware update"
crmkit events list --name warranty.defect_threshold_crossed --limit 1

say "Moving it: triage, repair, resolve, close"
claim=$(crmkit warranty claims list --limit 1 --json | sed -n 's/.*"id": \([0-9]*\).*/\1/p' | head -n 1)
crmkit warranty claims move "$claim" triage --note "Firmware 3.2 bricks the board"
crmkit warranty claims move "$claim" repair --note "Reflash on site"
crmkit warranty claims resolve "$claim" --note "Reflashed to 3.2.1"
crmkit warranty claims move "$claim" close
crmkit warranty claims show "$claim"

say "A claim without a serial, rejected with a reason; a move the workflow refuses"
crmkit warranty claims open CS-12 --customer 3 --defect other --channel email \
    --description "Sensor reads 5 degrees too high"
other=$(crmkit warranty claims list --limit 1 --json | sed -n 's/.*"id": \([0-9]*\).*/\1/p' | head -n 1)
crmkit warranty claims reject "$other" --reason "Calibration is the customer's duty (manual 4.2)"
crmkit warranty claims move "$other" triage || echo "(refused, as it should be; nothing changed)"

say "Acme's timeline: every claim step is on it"
crmkit interactions list 1 --kind warranty_claim --kind purchase --limit 8

say "Reports"
crmkit warranty report defects
crmkit warranty report defects --by batch
crmkit warranty report defects --by code --csv
crmkit warranty report sla
crmkit warranty report resolution
