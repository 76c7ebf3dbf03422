#!/usr/bin/env bash
# Registry benchmark: publish and pull of the benchmark corpus's archive against a local
# registry (Debian's docker-registry, distribution 2.8, on 127.0.0.1), each beside curl doing the
# same protocol steps.
#
#   benches/publish.sh [--flows 2000] [--seed 1] [--runs 5]
#
# - publish: `flowpack publish X oci://…:TAG --plain-http` vs `sha256sum` + curl uploading the
#   empty config and the archive (POST → PUT ?digest=) and PUTting the same manifest;
# - pull: `flowpack pull oci://…:TAG -o OUT --insecure-skip-signatures` (manifest, streamed layer
#   with its digest checked, verification, rename) vs curl fetching the manifest and the blob,
#   `sha256sum -c` and `unzip -tq` (target: each ratio <= 1.3).
# Every publish run goes to a new repository, so neither side is spared the upload by the
# registry already holding the blob. The registry's storage and every work file live in a
# temporary directory removed on exit; the registry is stopped on exit.
# FLOWPACK=/path/to/flowpack and BENCH_NO_BUILD=1 measure a prebuilt binary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FLOWS=2000 SEED=1 RUNS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) FLOWS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

ensure_tools
"$ROOT/scripts/setup-peers"
build_release flowpack flowpack-bench

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowpack-bench-publish.XXXXXX")
REGISTRY_PID=""
cleanup() {
  if [ -n "$REGISTRY_PID" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export SOURCE_DATE_EPOCH=1767225600

CORPUS=$(corpus "$FLOWS" "$SEED")
SIZE_MB=$(du -sm --apparent-size "$CORPUS" | cut -f1)
ARCHIVE="$WORK/bench.flowpack"
"$FP" pack "$CORPUS" -o "$ARCHIVE" --name bench --version 1.0.0 >/dev/null
ARCHIVE_MB=$(awk -v b="$(stat -c %s "$ARCHIVE")" 'BEGIN { printf "%.1f", b / 1048576 }')
machine
log "corpus: $FLOWS flows, $SIZE_MB MB; archive $ARCHIVE_MB MiB"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST="127.0.0.1:$PORT"
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $HOST
YAML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 200); do
  curl -sf -o /dev/null "http://$HOST/v2/" && break
  kill -0 "$REGISTRY_PID" 2>/dev/null || { cat "$WORK/registry.log" >&2; die "docker-registry exited"; }
  sleep 0.1
done
curl -sf -o /dev/null "http://$HOST/v2/" || die "docker-registry did not start"

# The peer's publish: the same steps over curl, into repository $1.
cat >"$WORK/peer-publish.sh" <<'PEER'
#!/usr/bin/env bash
set -euo pipefail
host=$1 repo=$2 archive=$3 title=$4
digest=sha256:$(sha256sum "$archive" | cut -d' ' -f1)
size=$(stat -c %s "$archive")
empty=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
upload() { # file digest
  local loc
  loc=$(curl -sSf -X POST -H 'Content-Length: 0' -D - -o /dev/null "http://$host/v2/$repo/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  case "$loc" in http*) ;; *) loc="http://$host$loc" ;; esac
  curl -sSf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" \
    "$loc&digest=$2"
}
printf '{}' >"$archive.config"
upload "$archive.config" "$empty"
upload "$archive" "$digest"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.flowpack.archive.v1","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.flowpack.archive.v1+zip","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.title":"%s"}}]}' \
  "$empty" "$digest" "$size" "$title" |
  curl -sSf -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @- "http://$host/v2/$repo/manifests/1.0.0"
PEER
# The peer's pull: manifest, blob, sha256sum -c, unzip -t.
cat >"$WORK/peer-pull.sh" <<'PEER'
#!/usr/bin/env bash
set -euo pipefail
host=$1 repo=$2 out=$3
digest=$(curl -sSf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$host/v2/$repo/manifests/1.0.0" | jq -r '.layers[0].digest')
curl -sSf -o "$out" "http://$host/v2/$repo/blobs/$digest"
echo "${digest#sha256:}  $out" | sha256sum -c --quiet
unzip -tq "$out" >/dev/null
PEER
chmod +x "$WORK/peer-publish.sh" "$WORK/peer-pull.sh"

# A new repository per run: a counter file both sides bump.
echo 0 >"$WORK/n"
NEXT='$(n=$(($(cat '"$WORK"'/n) + 1)); echo $n > '"$WORK"'/n; echo $n)'
FP_PUBLISH="$FP publish $ARCHIVE oci://$HOST/bench/fp-$NEXT:1.0.0 --plain-http >/dev/null"
PEER_PUBLISH="$WORK/peer-publish.sh $HOST bench/curl-$NEXT $ARCHIVE bench-1.0.0.flowpack"
log "publish"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/publish.json" \
  -n "flowpack publish" "$FP_PUBLISH" \
  -n "sha256sum + curl (blobs, manifest)" "$PEER_PUBLISH" >&2

# Both sides pull what flowpack published.
"$FP" publish "$ARCHIVE" "oci://$HOST/bench/pull:1.0.0" --plain-http >/dev/null
FP_PULL="$FP pull oci://$HOST/bench/pull:1.0.0 -o $WORK/fp-out.flowpack --force --plain-http --insecure-skip-signatures >/dev/null"
PEER_PULL="$WORK/peer-pull.sh $HOST bench/pull $WORK/peer-out.zip"
log "pull"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/pull.json" \
  -n "flowpack pull (verify)" "$FP_PULL" \
  -n "curl + sha256sum -c + unzip -t" "$PEER_PULL" >&2
cmp "$ARCHIVE" "$WORK/fp-out.flowpack" || die "the pulled archive differs from the published one"
cmp "$ARCHIVE" "$WORK/peer-out.zip" || die "curl's download differs from the published archive"

m() { median "$WORK/$1.json" "$2"; }
row() { # name json target
  local a b
  a=$(m "$2" 0); b=$(m "$2" 1)
  printf '| %-16s | %10.3f | %8.3f | %5s | <= %-5s | %-3s |\n' "$1" "$a" "$b" "$(ratio "$a" "$b")" "$3" "$(meets "$a" "$b" "$3")"
}
echo
echo "corpus: $FLOWS flows, $SIZE_MB MB, seed $SEED; archive $ARCHIVE_MB MiB; hyperfine median of $RUNS runs"
echo
echo "| operation        | flowpack s |   peer s | ratio | target   | met |"
echo "|------------------|-----------:|---------:|------:|----------|-----|"
row "publish" publish 1.3
row "pull" pull 1.3
