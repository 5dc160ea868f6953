#!/usr/bin/env bash
# Relay instructions per forwarded message, counted by valgrind's callgrind: repeatable for the
# same binary and the same traffic whatever else the machine is doing, so it can compare two
# builds where wall-clock runs on a shared machine cannot tell a few percent apart.
#
#   bench/callgrind.sh [BIN_DIR]      default: target/release (built first)
#
# Runs the relay under callgrind twice, forwarding 4 pairs × N1 and 4 pairs × N2 100-byte
# SENDs with hop-by-hop 200s (window 16); the difference of the two program totals divided
# by the difference in messages is the relay's user-space cost of one message (its SEND in,
# the SEND out, the 200 back to the sender and the receiver's 200 in), without start-up,
# certificate generation and AUTH. Kernel time is not counted.
# Knobs: N1 (2000), N2 (6000), OUT (a directory to keep the callgrind.out files in),
# MSGS_ARGS (more msrp-bench msgs arguments; "--rate 2000" paces the SENDs so that each read
# carries one message, which is what the relay costs under light and paced load; paced counts
# vary by a few percent from run to run, as the number of wake-ups per message does).
#
#   N1=1000 N2=3000 MSGS_ARGS="--rate 2000" bench/callgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N1=${N1:-2000}
N2=${N2:-6000}
if [ $# -ge 1 ]; then
  BIN=$(cd "$1" && pwd)
else
  cargo build --release --bins
  BIN=$ROOT/target/release
fi
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }

. "$ROOT/bench/lib.sh"
WORK=$(mktemp -d)
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
cleanup() {
  stop_relay
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_relay runs "$dir/msrp-relay" both for hash-password and for the relay itself: a
# wrapper puts only the relay under callgrind.
mkdir -p "$WORK/bin"
cat >"$WORK/bin/msrp-relay" <<EOF
#!/usr/bin/env bash
case " \$* " in
  *" --config "*) exec valgrind --tool=callgrind --callgrind-out-file="\$CALLGRIND_OUT" "$BIN/msrp-relay" "\$@" ;;
esac
exec "$BIN/msrp-relay" "\$@"
EOF
chmod +x "$WORK/bin/msrp-relay"

total() {
  # Read all of the output: an early exit would end callgrind_annotate with SIGPIPE.
  callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen { gsub(",", "", $1); print $1; seen = 1 }'
}

declare -A TOTAL
for n in "$N1" "$N2"; do
  export CALLGRIND_OUT=$OUT/callgrind.$n.out
  mkdir -p "$WORK/run$n"
  start_relay "$WORK/bin" "$WORK/run$n"
  # MSGS_ARGS is split into words on purpose.
  # shellcheck disable=SC2086
  "$BIN/msrp-bench" --json --max-time 300 msgs "${RELAY_ARGS[@]}" --pairs 4 --count "$n" \
    --window 16 ${MSGS_ARGS:-} >"$WORK/run$n/report.json"
  stop_relay
  TOTAL[$n]=$(total "$CALLGRIND_OUT")
  [ -n "${TOTAL[$n]}" ] || { echo "no callgrind total for $n messages" >&2; exit 1; }
done
echo "relay instructions per message: $(( (TOTAL[$N2] - TOTAL[$N1]) / (4 * (N2 - N1)) ))" \
  "(totals ${TOTAL[$N1]} for 4x$N1, ${TOTAL[$N2]} for 4x$N2; $BIN)"
