# Shared helpers of the benchmark scripts (sourced, not run).
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The binaries under test; FLOWPACK, FLOWPACK_BENCH and FLOWPACK_SANDBOX override them (with
# BENCH_NO_BUILD=1, nothing is built).
FP="${FLOWPACK:-$ROOT/target/release/flowpack}"
FPB="${FLOWPACK_BENCH:-$ROOT/target/release/flowpack-bench}"
FPS="${FLOWPACK_SANDBOX:-$ROOT/target/release/flowpack-sandbox}"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 2; }

# Installs the peers and tools a benchmark needs when they are missing (Debian packages; the
# Python peers go to .peers/venv through scripts/setup-peers). Needs root (or sudo) the first
# time only.
ensure_tools() {
  local need=() sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
  command -v minisign >/dev/null 2>&1 || need+=(minisign)
  command -v zip >/dev/null 2>&1 || need+=(zip)
  command -v unzip >/dev/null 2>&1 || need+=(unzip)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  command -v jq >/dev/null 2>&1 || need+=(jq)
  [ -x /usr/bin/time ] || need+=(time)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ "${1:-}" = "--jsonschema" ] && ! command -v check-jsonschema >/dev/null 2>&1 &&
    ! [ -x "$ROOT/.peers/venv/bin/check-jsonschema" ]; then
    "$ROOT/scripts/setup-peers"
  fi
}

# Builds the binaries in release mode: build_release PACKAGE...
build_release() {
  [ "${BENCH_NO_BUILD:-0}" = 1 ] && return 0
  local args=()
  for p in "$@"; do args+=(-p "$p"); done
  log "cargo build --release ${args[*]}"
  (cd "$ROOT" && cargo build --release --locked --quiet "${args[@]}")
}

# Generates (or reuses) a corpus under target/bench-corpus: corpus FLOWS SEED [TARGET_MB].
# Prints its directory. The corpus is deterministic, so a complete one is reused.
corpus() {
  local flows=$1 seed=$2 mb=${3:-} dir
  dir="$ROOT/target/bench-corpus/flows-$flows-seed-$seed${mb:+-mb-$mb}"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    log "generating $flows flows (seed $seed${mb:+, $mb MB}) into $dir"
    "$FPB" gen --flows "$flows" --seed "$seed" ${mb:+--target-mb "$mb"} --out "$dir" >&2
    touch "$dir/.complete"
  fi
  printf '%s\n' "$dir"
}

# Runs two commands in interleaved pairs (A, then B, --runs times) after one warm-up of each,
# recording each run's wall and CPU seconds (user + system, children included):
#   pairs RUNS OUT_A OUT_B CMD_A CMD_B
# appends "WALL CPU" lines to OUT_A and OUT_B. PAIR_PREPARE, when set, runs (untimed) before
# every run of either command. Each command must exit 0 (PAIR_OK_CODES widens that, e.g. "0 1").
pairs() {
  local runs=$1 out_a=$2 out_b=$3 cmd_a=$4 cmd_b=$5 i
  pair_run "$cmd_a" >/dev/null
  pair_run "$cmd_b" >/dev/null
  for i in $(seq "$runs"); do
    pair_run "$cmd_a" >>"$out_a"
    pair_run "$cmd_b" >>"$out_b"
  done
}

# One timed run of a command for `pairs`: prints "WALL CPU" in seconds.
pair_run() {
  local cmd=$1 t0 t1 cpu code=0 tf
  tf=$(mktemp)
  [ -z "${PAIR_PREPARE:-}" ] || bash -c "$PAIR_PREPARE"
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$tf" bash -c "$cmd" >/dev/null 2>"$tf.err" || code=$?
  t1=$(date +%s.%N)
  if ! grep -qw -- "$code" <<<"${PAIR_OK_CODES:-0}"; then
    cat "$tf.err" >&2
    rm -f "$tf" "$tf.err"
    die "exit $code: $cmd"
  fi
  cpu=$(awk 'END { printf "%.3f", $1 + $2 }' "$tf")
  rm -f "$tf" "$tf.err"
  awk -v a="$t0" -v b="$t1" -v c="$cpu" 'BEGIN { printf "%.3f %s\n", b - a, c }'
}

# The median of column COL (1 wall, 2 CPU) of a `pairs` output file: col_median FILE COL.
col_median() {
  awk -v c="$2" '{ print $c }' "$1" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The median of one hyperfine command from its JSON export: median JSON INDEX.
median() { jq -r ".results[$2].median" "$1"; }

# a / b with three decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }

# Whether ratio a/b is at most the target: meets A B TARGET -> "yes" | "NO".
meets() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { print ((b > 0 && a / b <= t) ? "yes" : "NO") }'; }

# Peak resident memory in KiB of a command: peak_kib CMD... (its output is discarded; fails
# when the command fails).
peak_kib() {
  local out
  out=$(mktemp)
  if ! /usr/bin/time -v "$@" >/dev/null 2>"$out"; then
    cat "$out" >&2
    rm -f "$out"
    return 1
  fi
  awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$out"
  rm -f "$out"
}

# Describes the machine, for the results.
machine() {
  printf 'machine: %s, %s cores (%s), %s GiB RAM, %s\n' \
    "$(uname -sr)" "$(nproc)" \
    "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" \
    "$(date -u +%Y-%m-%dT%H:%MZ)"
  printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# Sandboxes started by start_sandbox, stopped by stop_sandboxes (call it from an EXIT trap).
SANDBOX_PIDS=()

# Starts flowpack-sandbox on a free port of 127.0.0.1: start_sandbox LOG DB TOKEN [FLAG...].
# Sets SANDBOX_URL and SANDBOX_PID; waits at most 30 s for `listening on`.
start_sandbox() {
  local log=$1 db=$2 token=$3 i
  shift 3
  : >"$log"
  "$FPS" --listen 127.0.0.1:0 --db "$db" --token "$token" "$@" >"$log" 2>&1 &
  SANDBOX_PID=$!
  SANDBOX_PIDS+=("$SANDBOX_PID")
  SANDBOX_URL=""
  for i in $(seq 300); do
    SANDBOX_URL=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$log" | head -1 || true)
    [ -n "$SANDBOX_URL" ] && return 0
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$log" >&2; die "flowpack-sandbox exited"; }
    sleep 0.1
  done
  die "flowpack-sandbox did not start within 30 s (log: $log)"
}

# Stops one sandbox by pid: stop_sandbox PID.
stop_sandbox() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Stops every sandbox this script started.
stop_sandboxes() {
  local p
  for p in "${SANDBOX_PIDS[@]}"; do stop_sandbox "$p"; done
}

# Imports every document of a directory into a sandbox, 4 at a time: seed_sandbox URL TOKEN DIR.
seed_sandbox() {
  local url=$1 token=$2 dir=$3
  find "$dir" -maxdepth 1 -name '*.json' -print0 | sort -z |
    xargs -0 -P 4 -I{} curl -sSf -o /dev/null --retry 5 --retry-all-errors --retry-delay 1 \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -H 'Accept: application/json' --data-binary @{} "$url/api/v1/flows/import"
}

# How many flows a sandbox holds: flow_count URL TOKEN.
flow_count() {
  curl -sSf --retry 10 --retry-all-errors --retry-delay 1 -H "Authorization: Bearer $2" \
    "$1/api/v1/flows?per_page=1" | jq -r '.meta.total'
}
