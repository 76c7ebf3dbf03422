#!/usr/bin/env bash
# Object storage benchmarks (results in BENCHMARKS.md), against a real SeaweedFS (`weed server
# -s3`, started here on free ports of 127.0.0.1 with its own data directory and one access key,
# stopped on exit: SIGTERM, then SIGKILL after a grace period, as it shuts down slowly).
#
#   benches/storage.sh [--flows 1000] [--seed 1] [--runs 5] [--out FILE]
#
# - backup of --flows flows of the embedded environment `local`:
#   `flowpack backup --env local --dir s3://bench/backups` vs `--dir DIR` (target: ratio <= 1.2);
# - read and check an archive in the bucket: `flowpack verify s3://bench/backups/X` vs
#   `curl --aws-sigv4 -o X` + `sha256sum X` (target <= 1.2);
# - for context, `flowpack verify` of a local copy of the same archive (what the download adds);
# - peak RSS (`/usr/bin/time -v`) of both flowpack commands (target <= 256 MiB).
# Wall times are hyperfine medians of --runs runs after one warm-up. The weed binary is
# FLOWPACK_WEED, else .peers/venv/bin/weed (scripts/setup-peers installs it), else `weed` on
# PATH. FLOWPACK=/path/to/flowpack and BENCH_NO_BUILD=1 measure a prebuilt binary. The table
# goes to stdout, and to --out FILE too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FLOWS=1000 SEED=1 RUNS=5 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) FLOWS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

ensure_tools
build_release flowpack flowpack-bench

WEED="${FLOWPACK_WEED:-$ROOT/.peers/venv/bin/weed}"
[ -x "$WEED" ] || WEED=$(command -v weed || true)
[ -n "$WEED" ] && [ -x "$WEED" ] || die "SeaweedFS (weed) is not installed; run scripts/setup-peers"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowpack-bench-storage.XXXXXX")
WEED_PID=""
stop_weed() {
  [ -n "$WEED_PID" ] || return 0
  kill -TERM "$WEED_PID" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "$WEED_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$WEED_PID" 2>/dev/null || true
  wait "$WEED_PID" 2>/dev/null || true
  WEED_PID=""
}
trap 'stop_weed; rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=1767225600

ACCESS=FLOWPACKBENCHKEY SECRET=flowpack-bench-secret-0123456789
printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
  "$ACCESS" "$SECRET" >"$WORK/s3.json"
mkdir -p "$WORK/weed"
read -r -a PORTS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
"$WEED" -logdir="$WORK" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WORK/weed" \
  -master.port="${PORTS[0]}" -master.port.grpc="${PORTS[1]}" \
  -volume.port="${PORTS[2]}" -volume.port.grpc="${PORTS[3]}" \
  -filer.port="${PORTS[4]}" -filer.port.grpc="${PORTS[5]}" \
  -s3 -metricsPort=0 -volume.max=8 -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.volumeSizeLimitMB=64 -s3.port="${PORTS[6]}" -s3.port.grpc="${PORTS[7]}" \
  -s3.config="$WORK/s3.json" >"$WORK/weed.log" 2>&1 &
WEED_PID=$!
export AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:${PORTS[6]}" AWS_ALLOW_HTTP=true
unset AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 AWS_DEFAULT_REGION
CURL=(curl -sS --fail --aws-sigv4 aws:amz:us-east-1:s3 -u "$ACCESS:$SECRET")
for i in $(seq 600); do
  kill -0 "$WEED_PID" 2>/dev/null || { tail -20 "$WORK/weed.log" >&2; die "weed exited"; }
  "${CURL[@]}" -o /dev/null -X PUT "$AWS_ENDPOINT_URL/bench" 2>/dev/null && break
  [ "$i" = 600 ] && { tail -20 "$WORK/weed.log" >&2; die "weed did not start within 60 s"; }
  sleep 0.1
done

CORPUS=$(corpus "$FLOWS" "$SEED")
NFILES=$(find "$CORPUS" -name '*.json' | wc -l)
machine
log "corpus: $NFILES documents ($CORPUS); SeaweedFS $("$WEED" version 2>/dev/null | head -1)"

# The environment backed up: the embedded store of the work directory, holding the corpus.
cd "$WORK"
"$FP" pack "$CORPUS" -o a.flowpack --name bench --version 1.0.0 >/dev/null
"$FP" push a.flowpack --env local >/dev/null

log "backup to a bucket vs to a directory"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/backup.json" \
  -n "flowpack backup --dir s3://" "$FP backup --env local --dir s3://bench/backups" \
  -n "flowpack backup --dir DIR" "$FP backup --env local --dir $WORK/backups" >&2

OBJECT=$("$FP" backups s3://bench/backups --format json | jq -r '.backups[0].name')
[ -n "$OBJECT" ] && [ "$OBJECT" != null ] || die "no backup in the bucket"
SIZE_MB=$(awk -v b="$(stat -c %s "$(ls "$WORK"/backups/*.flowpack | head -1)")" 'BEGIN { printf "%.1f", b / 1048576 }')
FP_VERIFY="$FP verify s3://bench/backups/$OBJECT"
PEER_VERIFY="${CURL[*]} -o $WORK/dl.flowpack $AWS_ENDPOINT_URL/bench/backups/$OBJECT && sha256sum $WORK/dl.flowpack"
# flowpack verify of an unsigned archive checks everything but a signature, and says so.
eval "$FP_VERIFY" >/dev/null || die "flowpack verify refused $OBJECT"
log "verify s3:// vs curl --aws-sigv4 -o + sha256sum"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/verify.json" \
  -n "flowpack verify s3://" "$FP_VERIFY" \
  -n "curl --aws-sigv4 -o + sha256sum" "$PEER_VERIFY" >&2

# For context (not a target): the same verify of the local copy, so the part the download adds
# shows.
LOCAL_COPY=$(ls "$WORK"/backups/*.flowpack | head -1)
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/local.json" \
  -n "flowpack verify DIR/X" "$FP verify $LOCAL_COPY" >&2

log "peak memory"
BACKUP_KIB=$(peak_kib "$FP" backup --env local --dir s3://bench/backups)
VERIFY_KIB=$(peak_kib "$FP" verify "s3://bench/backups/$OBJECT")

m() { median "$WORK/$1.json" "$2"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rss_met() { awk -v k="$1" 'BEGIN { print (k <= 262144 ? "yes" : "NO") }'; }
table() {
  local a b
  echo "corpus: $NFILES flows, backup archive $SIZE_MB MB, seed $SEED; hyperfine median of $RUNS runs"
  echo
  echo "| operation                             | flowpack s |   peer s | ratio | target | met |"
  echo "|---------------------------------------|-----------:|---------:|------:|--------|-----|"
  a=$(m backup 0); b=$(m backup 1)
  printf '| backup --dir s3:// vs --dir DIR       | %10.3f | %8.3f | %5s | <= 1.2 | %-3s |\n' \
    "$a" "$b" "$(ratio "$a" "$b")" "$(meets "$a" "$b" 1.2)"
  a=$(m verify 0); b=$(m verify 1)
  printf '| verify s3:// vs curl -o + sha256sum   | %10.3f | %8.3f | %5s | <= 1.2 | %-3s |\n' \
    "$a" "$b" "$(ratio "$a" "$b")" "$(meets "$a" "$b" 1.2)"
  printf '| (context) verify of a local copy      | %10.3f |          |       |        |     |\n' "$(m local 0)"
  echo
  echo "| peak RSS (MiB)        | flowpack | target | met |"
  echo "|-----------------------|---------:|--------|-----|"
  printf '| backup --dir s3://    | %8s | <= 256 | %-3s |\n' "$(mib "$BACKUP_KIB")" "$(rss_met "$BACKUP_KIB")"
  printf '| verify s3://          | %8s | <= 256 | %-3s |\n' "$(mib "$VERIFY_KIB")" "$(rss_met "$VERIFY_KIB")"
}
echo
if [ -n "$OUT" ]; then
  table | tee "$OUT"
else
  table
fi
