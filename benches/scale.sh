#!/usr/bin/env bash
# Scale benchmark (results in BENCHMARKS.md): wall time and peak RSS (`/usr/bin/time -v`) of
# every command that reads or writes a whole corpus, at several corpus sizes.
#
#   benches/scale.sh [--flows "100 1000 10000 100000"] [--seed 1] [--small-from 100000]
#                    [--small-mb 1000] [--changed-every 10] [--out FILE]
#
# For each size N: a corpus of N generated flows (documents of 2-300 KB, mean 100 KB; from
# --small-from flows on, scaled to --small-mb MB in all so 100,000 flows stay ~1 GB), a copy with
# every --changed-every-th flow's description edited, then in a fresh work directory:
#   pack A, pack B, verify A, unpack A, diff A B (archive <-> archive), push --dry-run A --env
#   local, push A --env local (into the embedded store), diff B env:local, export --all --env
#   local, backup --env local.
# Each command is run once under /usr/bin/time -v; a failing command (or an unexpected exit
# code) stops the script. The table (markdown, one row per command, time and peak RSS per size)
# goes to stdout and, with --out, to FILE; the per-flow cost is the slope of time between the two
# largest sizes. Corpora are cached under target/bench-corpus (deterministic); work files go to a
# temporary directory removed on exit. FLOWPACK=/path/to/flowpack, FLOWPACK_BENCH=… and
# BENCH_NO_BUILD=1 measure prebuilt binaries (tests/scripts.rs runs it so with --flows 20).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SIZES="100 1000 10000 100000" SEED=1 SMALL_FROM=100000 SMALL_MB=1000 EVERY=10 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) SIZES=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --small-from) SMALL_FROM=$2; shift 2 ;;
    --small-mb) SMALL_MB=$2; shift 2 ;;
    --changed-every) EVERY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
for n in $SIZES; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "--flows takes flow counts, got '$n'"
done

command -v python3 >/dev/null 2>&1 || die "python3 is needed (to edit the second corpus)"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed (peak memory)"
build_release flowpack flowpack-bench
# Absolute: the commands run in the work directory.
FP=$(realpath "$FP") FPB=$(realpath "$FPB")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowpack-bench-scale.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=1767225600

COMMANDS=("pack" "verify" "unpack" "diff archive archive" "push --dry-run" "push (env:local)"
  "diff archive env:local" "export --all" "backup")
declare -A TIME RSS
CORPUS_DESC=()

# Runs CMD... in the current directory under /usr/bin/time -v as command LABEL at size N,
# expecting exit code WANT: measure N LABEL WANT CMD...
measure() {
  local n=$1 label=$2 want=$3 code=0 out
  shift 3
  out="$WORK/time.txt"
  /usr/bin/time -v -o "$out" "$@" >"$WORK/stdout.txt" 2>"$WORK/stderr.txt" || code=$?
  if [ "$code" != "$want" ]; then
    cat "$WORK/stderr.txt" >&2
    die "$label at $n flows exited $code, not $want: $*"
  fi
  TIME[$label,$n]=$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$out")
  RSS[$label,$n]=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$out")
  log "$label at $n flows: ${TIME[$label,$n]} s, ${RSS[$label,$n]} MiB"
}

machine >&2
for n in $SIZES; do
  mb=""
  [ "$n" -ge "$SMALL_FROM" ] && mb=$SMALL_MB
  CORPUS=$(corpus "$n" "$SEED" "$mb")
  size_mb=$(du -sm --apparent-size "$CORPUS" | cut -f1)
  CORPUS_DESC+=("$n flows: $size_mb MB")
  log "corpus: $n flows, $size_mb MB ($CORPUS)"
  D="$WORK/n$n"
  mkdir -p "$D"
  # B: every EVERY-th document (in name order) with its description edited.
  cp -r "$CORPUS" "$D/b"
  rm -f "$D/b/.complete"
  python3 - "$D/b" "$EVERY" <<'PY'
import json, pathlib, sys
every = int(sys.argv[2])
for i, f in enumerate(sorted(pathlib.Path(sys.argv[1]).glob("*.json"))):
    if i % every == 0:
        doc = json.loads(f.read_text())
        doc["flow"]["description"] = (doc["flow"].get("description") or "") + " (edited)"
        f.write_text(json.dumps(doc))
PY
  cd "$D"
  measure "$n" "pack" 0 "$FP" pack "$CORPUS" -o a.flowpack --name scale --version 1.0.0
  "$FP" pack b -o b.flowpack --name scale --version 1.0.1 >/dev/null
  rm -rf b
  measure "$n" "verify" 0 "$FP" verify a.flowpack
  measure "$n" "unpack" 0 "$FP" unpack a.flowpack -d unpacked --insecure-skip-signatures
  rm -rf unpacked
  measure "$n" "diff archive archive" 1 "$FP" diff a.flowpack b.flowpack
  measure "$n" "push --dry-run" 0 "$FP" push a.flowpack --env local --dry-run
  measure "$n" "push (env:local)" 0 "$FP" push a.flowpack --env local
  measure "$n" "diff archive env:local" 1 "$FP" diff b.flowpack env:local
  measure "$n" "export --all" 0 "$FP" export --all --env local -o export.flowpack
  measure "$n" "backup" 0 "$FP" backup --env local --dir backups
  cd "$WORK"
  rm -rf "$D"
done

table() {
  local n c row
  row="| command |"
  for n in $SIZES; do row+=" $n flows: s | MiB |"; done
  printf '%s\n' "$row"
  row="|---|"
  for n in $SIZES; do row+="---:|---:|"; done
  printf '%s\n' "$row"
  for c in "${COMMANDS[@]}"; do
    row="| \`$c\` |"
    for n in $SIZES; do row+=" ${TIME[$c,$n]} | ${RSS[$c,$n]} |"; done
    printf '%s\n' "$row"
  done
  # The per-flow cost: the slope of time between the two largest sizes.
  local sizes=($SIZES) a b
  if [ ${#sizes[@]} -ge 2 ]; then
    a=${sizes[-2]} b=${sizes[-1]}
    printf '\nPer-flow cost (time difference between %s and %s flows, per flow):\n\n' "$a" "$b"
    for c in "${COMMANDS[@]}"; do
      awk -v c="$c" -v ta="${TIME[$c,$a]}" -v tb="${TIME[$c,$b]}" -v a="$a" -v b="$b" \
        'BEGIN { printf "- `%s`: %.3f ms per flow\n", c, (tb - ta) * 1000 / (b - a) }'
    done
  fi
  printf '\nCorpora: %s.\n' "$(IFS=';'; echo "${CORPUS_DESC[*]}" | sed 's/;/; /g')"
}

if [ -n "$OUT" ]; then
  table | tee "$OUT"
else
  table
fi
