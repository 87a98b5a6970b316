# shellcheck shell=bash
# What the walk-throughs (docs/rest-walkthrough.sh, docs/ways-in-walkthrough.sh)
# share, sourced by each: a step's heading, a REST call that fails on an HTTP
# error, and a check of one value of an answer.

step() { echo "== $*" >&2; }
# curl that fails on an HTTP error, printing the google.rpc.Status it got.
call() {
  local out status
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' "$@")
  if [ "$status" != 200 ]; then
    echo "HTTP $status: $(cat "$out")" >&2
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}
expect() { # expect JQ_FILTER EXPECTED JSON
  local got
  got=$(jq -r "$1" <<<"$3")
  if [ "$got" != "$2" ]; then
    echo "expected $1 = $2, got $got in: $3" >&2
    return 1
  fi
}
