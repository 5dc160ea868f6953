#!/usr/bin/env bash
# Benchmarks on loopback: msrp-relay (release build, MSRP over TCP) against a plain TCP byte
# forwarder (the same bytes, no parsing) and Kamailio 5.6's msrp module. Every measurement
# runs RUNS times, targets interleaved; prints a Markdown table of medians (also written to
# $OUT/table.md, with every run's JSON report in $OUT/results.jsonl).
#
#   bench/run.sh
#   RUNS=5 DURATION=5 bench/run.sh
#
# Environment (defaults in brackets):
#   RUNS [3]            runs of each measurement
#   DURATION [3]        seconds of sending per msgs run
#   PAIRS [4]           sender/receiver pairs in the msgs runs; WINDOW [64] in flight per sender
#   FIXED_RATE [20000]  msgs/s of the fixed-rate latency runs (all targets; 0 skips them)
#   LIGHT_RATE [1000]   msgs/s of the light-load latency runs (one pair)
#   BULK_SIZE [1GiB]    message of the bulk runs (8 KiB and 64 KiB chunks)
#   BIG_SIZE [4GiB]     message of the memory run (64 KiB chunks, once); 0 skips it
#   IDLE_CONNS [3000]   idle connections, ours and Kamailio's (its config allows 4096)
#   IDLE_MAX [auto]     the largest idle run on ours (auto: RLIMIT_NOFILE's hard limit - 200); 0 skips
#   KAMAILIO [auto]     1: required, 0: skipped, auto: used when installed or installable
#   KAM_DIR [../shared/peers/kamailio]   its start.sh and stop.sh
#   KAM_TCP_PORT [2856], KAM_TLS_PORT [2857]   Kamailio's listeners (TLS only for the TLS rows)
#   OUT [bench/out]     where results.jsonl and table.md go
#   RELAY_WORKERS [0]   relay.worker_threads of our relay (0: one per core)
#   CARGO_TARGET_DIR [target]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-3}
PAIRS=${PAIRS:-4}
WINDOW=${WINDOW:-64}
FIXED_RATE=${FIXED_RATE:-20000}
LIGHT_RATE=${LIGHT_RATE:-1000}
BULK_SIZE=${BULK_SIZE:-1GiB}
BIG_SIZE=${BIG_SIZE:-4GiB}
IDLE_CONNS=${IDLE_CONNS:-3000}
IDLE_MAX=${IDLE_MAX:-auto}
KAMAILIO=${KAMAILIO:-auto}
KAM_DIR=${KAM_DIR:-$(cd "$ROOT/.." && pwd)/shared/peers/kamailio}
OUT=${OUT:-$ROOT/bench/out}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release

. "$ROOT/bench/lib.sh"

echo "== build (release)" >&2
cargo build --release --bins >&2

mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d)
KAM_RUN=$WORK/kam
KAM_STARTED=
cleanup() {
  stop_relay
  if [ -n "$KAM_STARTED" ]; then stop_kam; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

KAM_PORT=${KAM_TCP_PORT:-2856}
KAM_TLS_PORT=${KAM_TLS_PORT:-2857}
# start_kam [tls]: TCP only (every TCP row, with nothing loaded that they do not use), or
# with its TLS listener too (the TLS rows; its certificate is self-signed).
start_kam() {
  RUN_DIR=$KAM_RUN KAM_TCP_PORT=$KAM_PORT KAM_TLS_PORT=$KAM_TLS_PORT "$KAM_DIR/start.sh" "$@" >&2 || return 1
  KAM_STARTED=1
  KAM_ARGS=(--relay "127.0.0.1:$KAM_PORT" --relay-uri "msrp://127.0.0.1:$KAM_PORT;tcp"
    --relay-pid "$(cat "$KAM_RUN/kamailio.pid")")
  KAM_TLS_ARGS=(--relay "127.0.0.1:$KAM_TLS_PORT" --relay-uri "msrps://127.0.0.1:$KAM_TLS_PORT;tcp"
    --tls --insecure --relay-pid "$(cat "$KAM_RUN/kamailio.pid")")
}
stop_kam() {
  RUN_DIR=$KAM_RUN "$KAM_DIR/stop.sh" >/dev/null 2>&1 || true
  KAM_STARTED=
}
# A fresh relay: memory measured from a cold start, not from what earlier runs left behind.
restart_relay() {
  stop_relay
  start_relay "$BIN" "$WORK"
}

echo "== start msrp-relay" >&2
start_relay "$BIN" "$WORK"
echo "msrp-relay pid $RELAY_PID on 127.0.0.1:$RELAY_PORT" >&2

KAM_ARGS=()
if [ "$KAMAILIO" != 0 ]; then
  if ! [ -x /usr/sbin/kamailio ] && [ "$(id -u)" = 0 ]; then
    echo "== install kamailio" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio kamailio-tls-modules) >&2 || true
  fi
  if [ -x /usr/sbin/kamailio ] && [ -x "$KAM_DIR/start.sh" ]; then
    start_kam || true
  fi
  if [ -z "$KAM_STARTED" ]; then
    [ "$KAMAILIO" = 1 ] && { echo "Kamailio is required (KAMAILIO=1) but did not start" >&2; exit 1; }
    echo "Kamailio unavailable: its column stays empty" >&2
  fi
fi

# one TAG MODE ARGS...: one run, its JSON report appended to results.jsonl.
one() {
  local tag=$1
  shift
  local line
  line=$("$BIN/msrp-bench" --json --tag "$tag" --max-time 600 "$@" 2>>"$WORK/bench.err") || true
  [ -n "$line" ] || line="{\"tag\":\"$tag\",\"ok\":false,\"error\":\"no report\"}"
  printf '%s\n' "$line" >>"$RESULTS"
  case $line in
    *'"ok":true'*) echo "  $tag ok" >&2 ;;
    *) echo "  $tag FAILED: $line" >&2 ;;
  esac
}

# kam TAG MODE ARGS...: the same, when Kamailio runs.
kam() { [ -z "$KAM_STARTED" ] || one "$@"; }

median() { "$BIN/msrp-bench" median "$RESULTS" --tag "$1" --field "$2" 2>/dev/null || echo 0; }

{
  echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
  echo "kamailio: $([ -x /usr/sbin/kamailio ] && /usr/sbin/kamailio -v 2>/dev/null | head -1 || echo none)"
  echo "started: $(date -u +%FT%TZ), uptime: $(uptime)"
} | tee "$OUT/machine.txt" >&2

MSGS=(--pairs "$PAIRS" --window "$WINDOW" --duration "$DURATION")
for run in $(seq 1 "$RUNS"); do
  echo "== run $run of $RUNS" >&2
  one msgs-yes/ours msgs "${RELAY_ARGS[@]}" "${MSGS[@]}"
  one msgs-yes/fwd baseline-msgs "${MSGS[@]}"
  kam msgs-yes/kam msgs "${KAM_ARGS[@]}" "${MSGS[@]}"
  # Both clients on our relay, each To-Path starting with the sender's own Use-Path (the
  # relay is crossed twice, RFC 7977 §8.3.2). Not run on Kamailio: its configuration
  # relays a To-Path with more hops by connecting to the next hop (itself, here).
  one msgs-full/ours msgs "${RELAY_ARGS[@]}" "${MSGS[@]}" --path full
  one msgs-no/ours msgs "${RELAY_ARGS[@]}" "${MSGS[@]}" --failure-report no
  one msgs-no/fwd baseline-msgs "${MSGS[@]}" --failure-report no
  kam msgs-no/kam msgs "${KAM_ARGS[@]}" "${MSGS[@]}" --failure-report no
  one bulk8k/ours bulk "${RELAY_ARGS[@]}" --size "$BULK_SIZE" --chunk 8KiB
  one bulk8k/fwd baseline-bulk --size "$BULK_SIZE" --chunk 8KiB
  kam bulk8k/kam bulk "${KAM_ARGS[@]}" --size "$BULK_SIZE" --chunk 8KiB
  # Kamailio silently drops frames above ~11 KB: no 64 KiB run against it.
  one bulk64k/ours bulk "${RELAY_ARGS[@]}" --size "$BULK_SIZE" --chunk 64KiB
  one bulk64k/fwd baseline-bulk --size "$BULK_SIZE" --chunk 64KiB
done

# The forwarder runs at our rate, not at half of its own peak: it is the baseline of our
# measurement (the same generator, hops and traffic without MSRP processing), so that the
# latency the relay adds reads as ours minus fwd, percentile by percentile (see the comment
# at the top of src/bench/msgs.rs). Kamailio runs at half of its own peak.
echo "== latency at half of the median peak rate (ours and fwd at ours, kam at its own)" >&2
for run in $(seq 1 "$RUNS"); do
  for t in ours fwd kam; do
    case $t in
      fwd) rate=$(median msgs-yes/ours results.msgs_per_s) ;;
      *) rate=$(median "msgs-yes/$t" results.msgs_per_s) ;;
    esac
    rate=$(awk -v r="$rate" 'BEGIN { printf "%d", r / 2 }')
    [ "$rate" -gt 0 ] || continue
    # --series-ms: each report also says in which 100 ms a tail happened (a stall or load).
    LAT=(--pairs "$PAIRS" --window 100000 --duration "$DURATION" --rate "$rate" --series-ms 100)
    case $t in
      ours) one lat/ours msgs "${RELAY_ARGS[@]}" "${LAT[@]}" ;;
      fwd) one lat/fwd baseline-msgs "${LAT[@]}" ;;
      kam) kam lat/kam msgs "${KAM_ARGS[@]}" "${LAT[@]}" ;;
    esac
  done
done

# Half of peak loads the 2 cores shared with the generator to saturation at our rate (see
# BENCHMARKS.md), so the same traffic also runs at one fixed rate that every target sustains:
# the latency each adds when the machine is not the limit, compared at equal load.
if [ "$FIXED_RATE" -gt 0 ]; then
  echo "== latency at a fixed rate ($FIXED_RATE msgs/s, all targets)" >&2
  FIXED=(--pairs "$PAIRS" --window 100000 --duration "$DURATION" --rate "$FIXED_RATE" --series-ms 100)
  for run in $(seq 1 "$RUNS"); do
    one lat-fixed/ours msgs "${RELAY_ARGS[@]}" "${FIXED[@]}"
    one lat-fixed/fwd baseline-msgs "${FIXED[@]}"
    kam lat-fixed/kam msgs "${KAM_ARGS[@]}" "${FIXED[@]}"
  done
fi

echo "== latency under light load (one pair, $LIGHT_RATE msgs/s)" >&2
for run in $(seq 1 "$RUNS"); do
  LIGHT=(--pairs 1 --duration "$DURATION" --rate "$LIGHT_RATE")
  one lat-light/ours msgs "${RELAY_ARGS[@]}" "${LIGHT[@]}"
  one lat-light/fwd baseline-msgs "${LIGHT[@]}"
  kam lat-light/kam msgs "${KAM_ARGS[@]}" "${LIGHT[@]}"
done

# MSRP over TLS (msrps:, what clients use): ours on its TLS listener (self-signed certificate,
# not verified), Kamailio restarted with its TLS listener. No forwarder: it has no TLS.
# Kamailio drops frames above ~11 KB, so no 64 KiB run against it.
echo "== over TLS" >&2
KAM_TLS=
if [ -n "$KAM_STARTED" ]; then
  stop_kam
  # Without its TLS module (kamailio-tls-modules), back to TCP for the idle rows below.
  if start_kam tls; then KAM_TLS=1; else start_kam || true; fi
fi
kam_tls() { [ -z "$KAM_TLS" ] || one "$@"; }
for run in $(seq 1 "$RUNS"); do
  one msgs-tls/ours msgs "${RELAY_TLS_ARGS[@]}" "${MSGS[@]}"
  kam_tls msgs-tls/kam msgs "${KAM_TLS_ARGS[@]}" "${MSGS[@]}"
  one bulk8k-tls/ours bulk "${RELAY_TLS_ARGS[@]}" --size "$BULK_SIZE" --chunk 8KiB
  kam_tls bulk8k-tls/kam bulk "${KAM_TLS_ARGS[@]}" --size "$BULK_SIZE" --chunk 8KiB
  one bulk64k-tls/ours bulk "${RELAY_TLS_ARGS[@]}" --size "$BULK_SIZE" --chunk 64KiB
done

echo "== idle connections (each run on a freshly started relay)" >&2
for run in $(seq 1 "$RUNS"); do
  restart_relay
  one idle/ours idle "${RELAY_ARGS[@]}" --conns "$IDLE_CONNS" --hold 3
  if [ -n "$KAM_STARTED" ]; then
    stop_kam
    start_kam && kam idle/kam idle "${KAM_ARGS[@]}" --conns "$IDLE_CONNS" --hold 3
  fi
done
if [ "$IDLE_MAX" = auto ]; then IDLE_MAX=$(($(ulimit -Hn) - 200)); fi
if [ "$IDLE_MAX" -gt 0 ]; then
  restart_relay
  one idle-max/ours idle "${RELAY_ARGS[@]}" --conns "$IDLE_MAX" --hold 3 --concurrency 500
fi

if [ "$BIG_SIZE" != 0 ]; then
  echo "== memory while a $BIG_SIZE message streams" >&2
  restart_relay
  one bulk4g/ours bulk "${RELAY_ARGS[@]}" --size "$BIG_SIZE" --chunk 64KiB
fi

echo "finished: $(date -u +%FT%TZ), uptime: $(uptime)" | tee -a "$OUT/machine.txt" >&2
"$BIN/msrp-bench" table "$RESULTS" | tee "$OUT/table.md"
