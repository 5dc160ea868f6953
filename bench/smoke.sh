#!/usr/bin/env bash
# CI smoke test of msrp-bench against msrp-relay: every mode once, with tiny counts (seconds
# in all), on loopback. Exits non-zero when a run fails (lost messages, a wrong hash, an
# error response, a time limit) or a report is missing.
#
#   bench/smoke.sh                  debug build (what `cargo test` already built)
#   PROFILE=release bench/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${PROFILE:-debug}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/$PROFILE

. "$ROOT/bench/lib.sh"

if [ "$PROFILE" = release ]; then
  cargo build --release --bins
else
  cargo build --bins
fi
WORK=$(mktemp -d)
cleanup() {
  stop_relay
  rm -rf "$WORK"
}
trap cleanup EXIT
start_relay "$BIN" "$WORK"

RESULTS=$WORK/results.jsonl
FAILED=0
PASSED=0
one() {
  local tag=$1
  shift
  local line
  if line=$("$BIN/msrp-bench" --json --tag "$tag" --max-time 60 "$@"); then
    echo "ok      $tag"
    PASSED=$((PASSED + 1))
  else
    echo "FAILED  $tag: $line"
    FAILED=$((FAILED + 1))
  fi
  printf '%s\n' "$line" >>"$RESULTS"
}

one msgs-yes/ours msgs "${RELAY_ARGS[@]}" --pairs 2 --count 300 --window 16
one msgs-no/ours msgs "${RELAY_ARGS[@]}" --count 300 --failure-report no
one msgs-full/ours msgs "${RELAY_ARGS[@]}" --count 100 --path full
one lat/ours msgs "${RELAY_ARGS[@]}" --count 200 --rate 2000 --series-ms 20
one bulk8k/ours bulk "${RELAY_ARGS[@]}" --size 1MiB --chunk 8KiB
one bulk64k/ours bulk "${RELAY_ARGS[@]}" --size 4MiB --chunk 64KiB
one bulk1/ours bulk "${RELAY_ARGS[@]}" --size 1MiB --chunk 0 --failure-report no
one idle/ours idle "${RELAY_ARGS[@]}" --conns 50 --hold 1
one msgs-tls/ours msgs "${RELAY_TLS_ARGS[@]}" --count 200
one bulk-tls/ours bulk "${RELAY_TLS_ARGS[@]}" --size 2MiB --chunk 16KiB
one idle-tls/ours idle "${RELAY_TLS_ARGS[@]}" --conns 20 --hold 1
one msgs-yes/fwd baseline-msgs --count 300
one bulk64k/fwd baseline-bulk --size 4MiB

# A run that must fail: a wrong password is refused, loudly.
if MSRP_BENCH_PASSWORD=wrong "$BIN/msrp-bench" msgs "${RELAY_ARGS[@]}" --count 1 >/dev/null 2>&1; then
  echo "FAILED  a wrong password was not reported as a failure"
  FAILED=$((FAILED + 1))
else
  echo "ok      wrong password fails"
  PASSED=$((PASSED + 1))
fi
# Only loopback targets.
if "$BIN/msrp-bench" msgs --relay 192.0.2.1:2855 --relay-uri "msrp://x;tcp" --count 1 >/dev/null 2>&1; then
  echo "FAILED  a non-loopback target was accepted"
  FAILED=$((FAILED + 1))
else
  echo "ok      non-loopback target refused"
  PASSED=$((PASSED + 1))
fi

# The paced run asked for a latency series (--series-ms 20): its report has one.
grep '"tag":"lat/ours"' "$RESULTS" | grep -q '"latency_series":{"interval_ms":20.0' || {
  echo "FAILED  latency series missing from the paced run's report"
  FAILED=$((FAILED + 1))
}

"$BIN/msrp-bench" table "$RESULTS" >"$WORK/table.md"
grep -q '^| msgs/s, 100-byte SEND, Failure-Report yes' "$WORK/table.md" || {
  echo "FAILED  table"
  FAILED=$((FAILED + 1))
}

echo "bench smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
