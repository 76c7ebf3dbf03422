#!/usr/bin/env bash
# diff benchmark (results in BENCHMARKS.md): `flowpack diff A B` of two archives of --flows
# generated flows, --changed of them edited, against benches/diff_peer.py (a Python script that
# opens both zips, parses every document, groups by flow name and compares the parsed values),
# and the peak memory of each; and `diff --format html -o report.html` (the review report, each
# changed flow's changed version drawn) against `diff --format json -o report.json`.
#
#   benches/diff.sh [--flows 1000] [--changed 10] [--seed 1] [--runs 5] [--hostile]
#                   [--hostile-docs 60] [--hostile-bytes 16000000]
#
# Times are medians of --runs interleaved pairs (flowpack, then the peer, --runs times), wall
# clock, after one warm-up of each; target ratio <= 0.3. With --hostile, also the peak memory of
# `diff` on an archive of --hostile-docs documents of one --hostile-bytes string each against the
# same flows with other strings and against itself (target <= 256 MiB each). Work files go to a
# temporary directory removed on exit; the corpus is cached under target/bench-corpus.
# FLOWPACK=/path/to/flowpack and BENCH_NO_BUILD=1 measure a prebuilt binary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FLOWS=1000 CHANGED=10 SEED=1 RUNS=5 HOSTILE=0 HOSTILE_DOCS=60 HOSTILE_BYTES=16000000
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) FLOWS=$2; shift 2 ;;
    --changed) CHANGED=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --hostile) HOSTILE=1; shift ;;
    --hostile-docs) HOSTILE_DOCS=$2; shift 2 ;;
    --hostile-bytes) HOSTILE_BYTES=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

command -v python3 >/dev/null 2>&1 || die "python3 is needed (the peer)"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed (peak memory)"
build_release flowpack flowpack-bench

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowpack-bench-diff.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=1767225600

CORPUS=$(corpus "$FLOWS" "$SEED")
NFILES=$(find "$CORPUS" -name '*.json' | wc -l)
SIZE_MB=$(du -sm --apparent-size "$CORPUS" | cut -f1)
machine
log "corpus: $NFILES documents, $SIZE_MB MB ($CORPUS)"

# B: the corpus with the description of the first --changed documents (in name order) edited.
cp -r "$CORPUS" "$WORK/b"
python3 - "$WORK/b" "$CHANGED" <<'PY'
import json, pathlib, sys
files = sorted(pathlib.Path(sys.argv[1]).glob("*.json"))[: int(sys.argv[2])]
for f in files:
    doc = json.loads(f.read_text())
    doc["flow"]["description"] = (doc["flow"].get("description") or "") + " (edited)"
    # A step edited too, so that the review report has a version to draw.
    steps = doc["flow"]["versions"][0].get("steps") or []
    if len(steps) > 1:
        steps[1]["name"] = str(steps[1].get("name")) + " (edited)"
    f.write_text(json.dumps(doc, indent=2))
PY
"$FP" pack "$CORPUS" -o "$WORK/a.flowpack" --name bench --version 1.0.0 >/dev/null
"$FP" pack "$WORK/b" -o "$WORK/b.flowpack" --name bench --version 1.0.1 >/dev/null

FP_DIFF="$FP diff $WORK/a.flowpack $WORK/b.flowpack"
PEER_DIFF="python3 $ROOT/benches/diff_peer.py $WORK/a.flowpack $WORK/b.flowpack"
# Both must find exactly the edited flows, or the timing means nothing.
check() { # CMD LABEL PATTERN
  local out code=0
  out=$(bash -c "$1") || code=$?
  [ "$code" = 1 ] || die "$2 exited $code, not 1 (different)"
  [ "$(grep -c "$3" <<<"$out")" = "$CHANGED" ] || die "$2 did not find $CHANGED changed flows"
}
check "$FP_DIFF" "flowpack diff" '^changed  '
check "$PEER_DIFF" "diff_peer.py" '^changed  '

# Seconds of wall clock of one run (exit 1, "different", expected).
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  bash -c "$1" >/dev/null || [ $? = 1 ] || die "$1 failed"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
log "diff: $RUNS interleaved pairs"
secs "$FP_DIFF" >/dev/null
secs "$PEER_DIFF" >/dev/null
: >"$WORK/fp.txt"; : >"$WORK/peer.txt"
for _ in $(seq "$RUNS"); do
  secs "$FP_DIFF" >>"$WORK/fp.txt"
  secs "$PEER_DIFF" >>"$WORK/peer.txt"
done
log "diff --format html vs --format json: $RUNS interleaved pairs"
# Both written to a file the same way (atomically, synced), so the figure is the format's cost.
FP_JSON="$FP_DIFF --format json -o $WORK/report.json --force"
FP_HTML="$FP_DIFF --format html -o $WORK/report.html --force"
secs "$FP_JSON" >/dev/null
secs "$FP_HTML" >/dev/null
grep -c '<section id="flow-' "$WORK/report.html" | grep -qx "$CHANGED" ||
  die "the HTML report does not hold $CHANGED changed flows"
: >"$WORK/json.txt"; : >"$WORK/html.txt"
for _ in $(seq "$RUNS"); do
  secs "$FP_JSON" >>"$WORK/json.txt"
  secs "$FP_HTML" >>"$WORK/html.txt"
done
HTML_KB=$(( $(stat -c %s "$WORK/report.html") / 1024 ))
med() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
FP_S=$(med "$WORK/fp.txt")
PEER_S=$(med "$WORK/peer.txt")
JSON_S=$(med "$WORK/json.txt")
HTML_S=$(med "$WORK/html.txt")

log "peak memory"
peak_diff() { # CMD: peak KiB, exit 0 or 1 accepted
  local out
  out=$(mktemp)
  /usr/bin/time -v bash -c "$1" >/dev/null 2>"$out" || true
  awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$out"
  rm -f "$out"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
FP_KIB=$(peak_diff "$FP_DIFF")
PEER_KIB=$(peak_diff "$PEER_DIFF")

if [ "$HOSTILE" = 1 ]; then
  log "hostile: $HOSTILE_DOCS documents of one $HOSTILE_BYTES-byte string"
  python3 "$ROOT/fixtures/archives/make_hostile.py" --strings "$WORK/s1.flowpack" "$HOSTILE_DOCS" "$HOSTILE_BYTES" 1
  python3 "$ROOT/fixtures/archives/make_hostile.py" --strings "$WORK/s2.flowpack" "$HOSTILE_DOCS" "$HOSTILE_BYTES" 2
  H_BASE_KIB=$(peak_diff "$FP diff $WORK/s2.flowpack $WORK/s1.flowpack")
  H_SELF_KIB=$(peak_diff "$FP diff $WORK/s1.flowpack $WORK/s1.flowpack")
  H_MB=$(du -m "$WORK/s1.flowpack" | cut -f1)
fi

echo
echo "corpus: $NFILES flows, $SIZE_MB MB, seed $SEED, $CHANGED changed; median of $RUNS interleaved pairs"
echo
echo "| operation        | flowpack s |   peer s | ratio | target   | met |"
echo "|------------------|-----------:|---------:|------:|----------|-----|"
printf '| %-16s | %10.3f | %8.3f | %5s | <= %-5s | %-3s |\n' "diff" "$FP_S" "$PEER_S" \
  "$(ratio "$FP_S" "$PEER_S")" 0.3 "$(meets "$FP_S" "$PEER_S" 0.3)"
echo
echo "| operation                  | html s | json s | ratio | target   | met | report KB |"
echo "|----------------------------|-------:|-------:|------:|----------|-----|----------:|"
printf '| %-26s | %6.3f | %6.3f | %5s | <= %-5s | %-3s | %9s |\n' "diff --format html vs json" \
  "$HTML_S" "$JSON_S" "$(ratio "$HTML_S" "$JSON_S")" 1.2 "$(meets "$HTML_S" "$JSON_S" 1.2)" "$HTML_KB"
echo
echo "| peak RSS (MiB) | flowpack | peer |"
echo "|---|---:|---:|"
printf '| diff, %d flows, %d changed | %s | %s |\n' "$NFILES" "$CHANGED" "$(mib "$FP_KIB")" "$(mib "$PEER_KIB")"
if [ "$HOSTILE" = 1 ]; then
  printf '| diff, %d documents of one %d-byte string (%d MB archive), against other strings | %s | |\n' \
    "$HOSTILE_DOCS" "$HOSTILE_BYTES" "$H_MB" "$(mib "$H_BASE_KIB")"
  printf '| diff, the same archive against itself | %s | |\n' "$(mib "$H_SELF_KIB")"
fi
