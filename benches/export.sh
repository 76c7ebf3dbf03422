#!/usr/bin/env bash
# Export benchmarks (results in BENCHMARKS.md) against a local flowpack-sandbox (127.0.0.1 only).
#
#   benches/export.sh [--flows 1000] [--seed 1] [--runs 5] [--fault-flows 500]
#
# 1. Speed: a sandbox seeded with the corpus; `flowpack export --all --jobs 4 --sign KEY` into a
#    signed archive vs a curl loop (list pages, then POST /api/v1/flows/export per flow, each
#    document to a file), sequential and with xargs -P4 (target: ratio to the -P4 loop <= 0.5).
# 2. Faults: a sandbox with --fail-rate 0.2 --rate-limit 50 holding --fault-flows flows;
#    `flowpack export --all` from it, then `flowpack push` into an EMPTY second sandbox with the
#    same faults. Checks every flow landed exactly once (count, names, and content after
#    normalising ids, timestamps and the statuses import sets), and reports the retries made
#    and the wall times.
# Sandboxes and work files are removed on exit; corpora are cached under target/bench-corpus.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FLOWS=1000 SEED=1 RUNS=5 FAULT_FLOWS=500
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) FLOWS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --fault-flows) FAULT_FLOWS=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

ensure_tools
build_release flowpack flowpack-bench flowpack-sandbox
WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowpack-bench-export.XXXXXX")
trap 'stop_sandboxes; rm -rf "$WORK"' EXIT
TOKEN="bench-$RANDOM$RANDOM"
export FLOWPACK_TOKEN=$TOKEN
minisign -G -W -f -p "$WORK/bench.pub" -s "$WORK/bench.key" >/dev/null
CURL_EXPORT="$ROOT/benches/curl-export.sh"

machine
CORPUS=$(corpus "$FLOWS" "$SEED")
log "seeding a sandbox with $FLOWS flows"
start_sandbox "$WORK/a.log" "$WORK/a.db" "$TOKEN"
URL_A=$SANDBOX_URL
seed_sandbox "$URL_A" "$TOKEN" "$CORPUS"
HELD=$(flow_count "$URL_A" "$TOKEN")
[ "$HELD" = "$FLOWS" ] || die "the sandbox holds $HELD flows, expected $FLOWS"

FP_EXPORT="$FP export --all --url $URL_A -o $WORK/export.flowpack --jobs 4 --sign $WORK/bench.key"
log "export"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/export.json" \
  --prepare "rm -rf $WORK/export.flowpack $WORK/seq $WORK/par" \
  -n "flowpack export --all --jobs 4 --sign" "$FP_EXPORT >/dev/null 2>&1" \
  -n "curl loop, sequential" "$CURL_EXPORT $URL_A $TOKEN $WORK/seq 1" \
  -n "curl loop, xargs -P4" "$CURL_EXPORT $URL_A $TOKEN $WORK/par 4" >&2
# Once more each (hyperfine's --prepare removed the others' output), to check what they wrote.
rm -rf "$WORK/par"
"$CURL_EXPORT" "$URL_A" "$TOKEN" "$WORK/par" 4
[ "$(find "$WORK/par" -name '*.json' | wc -l)" = "$FLOWS" ] || die "the curl loop did not export $FLOWS flows"
eval "$FP_EXPORT" >/dev/null 2>&1 || die "flowpack export failed"
"$FP" verify "$WORK/export.flowpack" --trusted-key "$WORK/bench.pub" >/dev/null ||
  die "the exported archive does not verify"
stop_sandbox "$SANDBOX_PID"

# --- the fault run -----------------------------------------------------------------------------
FAULTS=(--fail-rate 0.2 --rate-limit 50 --seed 7)
FAULT_CORPUS="$WORK/fault-corpus"
mkdir -p "$FAULT_CORPUS"
find "$CORPUS" -maxdepth 1 -name '*.json' | sort | head -n "$FAULT_FLOWS" | xargs -I{} cp {} "$FAULT_CORPUS/"
FAULT_FLOWS=$(find "$FAULT_CORPUS" -name '*.json' | wc -l)
log "fault run: $FAULT_FLOWS flows, sandboxes with ${FAULTS[*]}"
# Seed without faults, then restart on the same database with them.
start_sandbox "$WORK/b0.log" "$WORK/b.db" "$TOKEN"
seed_sandbox "$SANDBOX_URL" "$TOKEN" "$FAULT_CORPUS"
stop_sandbox "$SANDBOX_PID"
start_sandbox "$WORK/b.log" "$WORK/b.db" "$TOKEN" "${FAULTS[@]}"
URL_B=$SANDBOX_URL
start_sandbox "$WORK/c.log" "$WORK/c.db" "$TOKEN" "${FAULTS[@]}"
URL_C=$SANDBOX_URL
PID_C=$SANDBOX_PID

# --verbose logs every request and every retry (`! REQUEST: WHY; retrying in N ms`) to stderr.
t0=$(date +%s.%N)
"$FP" export --all --url "$URL_B" -o "$WORK/fault.flowpack" --jobs 4 --sign "$WORK/bench.key" \
  --verbose >"$WORK/fault-export.out" 2>"$WORK/fault-export.err" ||
  { tail -20 "$WORK/fault-export.err" >&2; die "flowpack export failed under faults"; }
t1=$(date +%s.%N)
"$FP" push "$WORK/fault.flowpack" --url "$URL_C" --trusted-key "$WORK/bench.pub" \
  --format json --verbose >"$WORK/fault-push.json" 2>"$WORK/fault-push.err" ||
  { tail -20 "$WORK/fault-push.err" >&2; die "flowpack push failed under faults"; }
t2=$(date +%s.%N)
EXPORT_RETRIES=$(grep -c '; retrying in' "$WORK/fault-export.err" || true)
PUSH_RETRIES=$(grep -c '; retrying in' "$WORK/fault-push.err" || true)
EXPORT_SUMMARY=$(tail -1 "$WORK/fault-export.out")
PUSH_OUTCOMES=$(jq -r '[.flows[].outcome] | group_by(.) | map("\(.[0]) \(length)") | join(", ")' "$WORK/fault-push.json")

# Check the target without faults: restart it on the same database.
stop_sandbox "$PID_C"
start_sandbox "$WORK/c2.log" "$WORK/c.db" "$TOKEN"
URL_C=$SANDBOX_URL
LANDED=$(flow_count "$URL_C" "$TOKEN")
"$CURL_EXPORT" "$URL_C" "$TOKEN" "$WORK/landed" 4
# One line per flow: its name and its content without ids, timestamps, import-set statuses and
# the fields the platform fills in on export.
normalise() {
  jq -c '
    del(.metadata.exported_at, .metadata.exported_by, .metadata.company_name,
        .metadata.format_version, .metadata.import_summary)
    | del(.flow.is_enabled, .flow.id, .flow.created_at, .flow.updated_at)
    | .flow.versions |= (sort_by(.iteration)
        | map(del(.id, .status, .is_deployed, .is_editable, .created_at, .updated_at,
                  .deployed_at)))
    | [.flow.name, .]' "$@" | sort
}
normalise "$FAULT_CORPUS"/*.json >"$WORK/source.lines"
normalise "$WORK/landed"/*.json >"$WORK/landed.lines"
NAMES_SOURCE=$(cut -d, -f1 "$WORK/source.lines" | sort -u | wc -l)
NAMES_LANDED=$(cut -d, -f1 "$WORK/landed.lines" | sort | uniq -c | awk '$1 == 1' | wc -l)
DIFFERENT=$(comm -3 "$WORK/source.lines" "$WORK/landed.lines" | wc -l)

E=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
P=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')
m() { median "$WORK/export.json" "$1"; }
F=$(m 0) S=$(m 1) X=$(m 2)

echo
echo "corpus: $FLOWS flows ($(du -sm --apparent-size "$CORPUS" | cut -f1) MB), seed $SEED; hyperfine median of $RUNS runs"
echo
echo "| export all                            | wall s | flowpack / this | target | met |"
echo "|---------------------------------------|-------:|----------------:|--------|-----|"
printf '| flowpack export --all --jobs 4 --sign | %6.2f |               - |        |     |\n' "$F"
printf '| curl loop, sequential                 | %6.2f |          %6s |        |     |\n' "$S" "$(ratio "$F" "$S")"
printf '| curl loop, xargs -P4                  | %6.2f |          %6s | <= 0.5 | %-3s |\n' "$X" "$(ratio "$F" "$X")" "$(meets "$F" "$X" 0.5)"
echo
echo "fault run: $FAULT_FLOWS flows, both sandboxes with ${FAULTS[*]}"
echo
echo "| step                | wall s | retries |"
echo "|---------------------|-------:|--------:|"
printf '| export --all        | %6s | %7s |\n' "$E" "$EXPORT_RETRIES"
printf '| push (empty target) | %6s | %7s |\n' "$P" "$PUSH_RETRIES"
echo
echo "flowpack export said: $EXPORT_SUMMARY"
echo "flowpack push outcomes: $PUSH_OUTCOMES"
echo
echo "landed: $LANDED flows (expected $FAULT_FLOWS); names landed exactly once: $NAMES_LANDED of $NAMES_SOURCE; documents differing after normalisation: $DIFFERENT lines"
if [ "$LANDED" = "$FAULT_FLOWS" ] && [ "$NAMES_LANDED" = "$FAULT_FLOWS" ] && [ "$DIFFERENT" = 0 ]; then
  echo "exactly once: yes"
else
  echo "exactly once: NO"
  comm -3 "$WORK/source.lines" "$WORK/landed.lines" | head -c 2000 >&2
  exit 1
fi
