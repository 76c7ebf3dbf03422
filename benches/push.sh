#!/usr/bin/env bash
# Push benchmark (results in BENCHMARKS.md) against a local flowpack-sandbox (127.0.0.1 only).
#
#   benches/push.sh [--flows 1000] [--seed 1] [--runs 5] [--latency-ms 30]
#
# The corpus (`flowpack-bench gen`) is packed into one archive, then pushed into an EMPTY
# sandbox started with --latency-ms (every request waits that long, as a remote platform
# would): `flowpack push --jobs 1`, `flowpack push --jobs 4`, and the peer, an `xargs -P4` curl
# loop POSTing each document of the corpus to /api/v1/flows/import. Each run gets a fresh
# sandbox; the figure is the median of --runs runs. Each run is checked: the sandbox holds
# exactly --flows flows afterwards. Targets: jobs 4 <= 0.45 of jobs 1 and <= 0.8 of the curl
# loop (curl only imports; push also verifies the archive, lists the target and plans).
# The keep-alive reference: one `curl --parallel --parallel-max 4` process importing the same
# documents over 4 kept-alive connections, which is the fastest any client holding 4 requests in
# flight can be against this sandbox (it does nothing but send the bytes). Target: jobs 4 (with
# its history record and journal, as pushes run) <= 1.10 of it. Each run takes the four
# commands in turn (interleaved), so load changes touch them alike.
# Sandboxes and work files are removed on exit; corpora are cached under target/bench-corpus.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FLOWS=1000 SEED=1 RUNS=5 LATENCY=30
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) FLOWS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --latency-ms) LATENCY=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

ensure_tools
build_release flowpack flowpack-bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowpack-bench-push.XXXXXX")
trap 'stop_sandboxes; rm -rf "$WORK"' EXIT
TOKEN="bench-$RANDOM$RANDOM"
export FLOWPACK_TOKEN=$TOKEN SOURCE_DATE_EPOCH=1767225600

machine
CORPUS=$(corpus "$FLOWS" "$SEED")
"$FP" pack "$CORPUS" -o "$WORK/bench.flowpack" --name bench --version 1.0.0 >/dev/null
log "corpus: $FLOWS flows packed into $(du -h "$WORK/bench.flowpack" | cut -f1)"

CURL_IMPORT="find $CORPUS -maxdepth 1 -name '*.json' -print0 | xargs -0 -P 4 -I{} curl -sSf -o /dev/null \
-H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' -H 'Accept: application/json' \
--data-binary @{} \"\$URL/api/v1/flows/import\""

# The keep-alive reference: one curl process, 4 transfers at a time on reused connections,
# from a config file naming every document (curl's -K format; `next` separates transfers).
KEEPALIVE_CFG="$WORK/keepalive.curlrc"
first=1
for doc in "$CORPUS"/*.json; do
  [ "$first" = 1 ] || echo next
  first=0
  # Options end at `next`, so each transfer names its headers.
  printf 'url = "URL/api/v1/flows/import"\ndata-binary = "@%s"\noutput = "/dev/null"\nfail\n' "$doc"
  printf 'header = "%s"\n' "Authorization: Bearer $TOKEN" "Content-Type: application/json" \
    "Accept: application/json"
done >"$KEEPALIVE_CFG.in"
CURL_KEEPALIVE="sed \"s|URL/|\$URL/|\" $KEEPALIVE_CFG.in >$KEEPALIVE_CFG && curl -sS -Z --parallel-max 4 -K $KEEPALIVE_CFG"

# One timed run of a command against a fresh sandbox: timed NAME COMMAND (URL is set for it).
# Prints the wall time in seconds.
timed() {
  local name=$1 cmd=$2 n=$3 t0 t1 held
  start_sandbox "$WORK/s.log" "$WORK/s-$name-$n.db" "$TOKEN" --latency-ms "$LATENCY"
  URL=$SANDBOX_URL
  t0=$(date +%s.%N)
  (cd "$WORK" && URL=$URL eval "$cmd") >"$WORK/out.log" 2>&1 || { cat "$WORK/out.log" >&2; die "$name failed"; }
  t1=$(date +%s.%N)
  held=$(flow_count "$URL" "$TOKEN")
  stop_sandbox "$SANDBOX_PID"
  [ "$held" = "$FLOWS" ] || die "$name: the sandbox holds $held flows, expected $FLOWS"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

med() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

J1=() J4=() CU=() KA=()
for n in $(seq "$RUNS"); do
  log "run $n of $RUNS"
  J1+=("$(timed jobs1 "$FP push bench.flowpack --url \$URL --jobs 1 --history hist" "$n")")
  J4+=("$(timed jobs4 "$FP push bench.flowpack --url \$URL --jobs 4 --history hist" "$n")")
  CU+=("$(timed curl "$CURL_IMPORT" "$n")")
  KA+=("$(timed keepalive "$CURL_KEEPALIVE" "$n")")
  log "jobs1 ${J1[-1]} s, jobs4 ${J4[-1]} s, curl -P4 ${CU[-1]} s, curl --parallel ${KA[-1]} s"
done
T1=$(med "${J1[@]}") T4=$(med "${J4[@]}") TC=$(med "${CU[@]}") TK=$(med "${KA[@]}")

echo
echo "push of $FLOWS flows into an empty sandbox (--latency-ms $LATENCY), median of $RUNS runs"
printf '  %-32s %8.2f s\n' "flowpack push --jobs 1" "$T1"
printf '  %-32s %8.2f s\n' "flowpack push --jobs 4" "$T4"
printf '  %-32s %8.2f s\n' "curl import loop, xargs -P4" "$TC"
printf '  %-32s %8.2f s\n' "curl --parallel, 4 (reference)" "$TK"
echo "  jobs 4 / jobs 1: $(ratio "$T4" "$T1") (target <= 0.45: $(meets "$T4" "$T1" 0.45))"
echo "  jobs 4 / curl -P4: $(ratio "$T4" "$TC") (target <= 0.8: $(meets "$T4" "$TC" 0.8))"
echo "  jobs 4 / curl --parallel (keep-alive reference): $(ratio "$T4" "$TK") (target <= 1.10: $(meets "$T4" "$TK" 1.10))"
echo "  reference: curl --parallel / curl -P4: $(ratio "$TK" "$TC")"
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
