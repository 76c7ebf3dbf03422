#!/usr/bin/env bash
# The peer of `flowpack export --all` in benches/export.sh: a curl loop that lists every flow
# (pages of 100) and exports each one to OUT_DIR/<id>.json, P at a time.
#
#   benches/curl-export.sh URL TOKEN OUT_DIR P
set -euo pipefail
url=$1 token=$2 out=$3 jobs=$4
mkdir -p "$out"
auth="Authorization: Bearer $token"
ids=$(mktemp)
trap 'rm -f "$ids"' EXIT
page=1 last=1
while [ "$page" -le "$last" ] && [ "$page" -le 10000 ]; do
  body=$(curl -sSf -H "$auth" -H 'Accept: application/json' "$url/api/v1/flows?page=$page&per_page=100")
  last=$(jq -r '.meta.last_page' <<<"$body")
  jq -r '.data[].id' <<<"$body" >>"$ids"
  page=$((page + 1))
done
xargs -P "$jobs" -I{} curl -sSf -o "$out/{}.json" -H "$auth" -H 'Accept: application/json' \
  -H 'Content-Type: application/json' -d '{"flow_id": {}}' "$url/api/v1/flows/export" <"$ids"
