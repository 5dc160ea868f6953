# shellcheck shell=bash
# Shared by bench/run.sh and bench/smoke.sh (sourced, not run).
#
# start_relay BIN_DIR WORK_DIR
#   Starts msrp-relay from BIN_DIR with a plain-TCP listener on 127.0.0.1 (port chosen by the
#   kernel, AUTH allowed over TCP: a lab setup), a TLS listener on 127.0.0.2 with the self-signed
#   certificate the relay makes at start, a users file made with hash-password, and the admin
#   listener on 127.0.0.1:0. Sets RELAY_PID, RELAY_PORT, RELAY_ARGS (msrp-bench arguments for
#   TCP), RELAY_TLS_ARGS (the same over TLS) and exports MSRP_BENCH_PASSWORD.
#   RELAY_WORKERS (default 0: one per core) sets relay.worker_threads. The relay's log
#   is WORK_DIR/relay.log.
# stop_relay
#   SIGTERM to RELAY_PID, then waits (at most 10 s).

BENCH_REALM=relay.bench.test
BENCH_USER=bench

start_relay() {
  local bin=$1 work=$2
  MSRP_BENCH_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export MSRP_BENCH_PASSWORD
  printf '%s\n' "$MSRP_BENCH_PASSWORD" >"$work/password"
  "$bin/msrp-relay" hash-password --user "$BENCH_USER" --realm "$BENCH_REALM" \
    --password-file "$work/password" >"$work/users.htdigest"
  cat >"$work/relay.toml" <<EOF
[relay]
hostname = "$BENCH_REALM"
worker_threads = ${RELAY_WORKERS:-0}

[[listen]]
transport = "tcp"
address = "127.0.0.1:0"

[[listen]]
transport = "tls"
address = "127.0.0.2:0"   # a second loopback address: two listeners cannot share one

[auth]
users_file = "$work/users.htdigest"
allow_insecure_tcp = true

[admin]
address = "127.0.0.1:0"
EOF
  # As many descriptors as allowed: the idle runs hold thousands of connections. Logs at
  # warn (plus the listener lines, to learn the port), so logging costs nothing per message.
  (
    ulimit -n "$(ulimit -Hn)"
    RUST_LOG=warn,msrp_relay::relay::server=info exec "$bin/msrp-relay" --config "$work/relay.toml"
  ) 2>"$work/relay.log" &
  RELAY_PID=$!
  RELAY_PORT=
  RELAY_TLS_PORT=
  for _ in $(seq 1 100); do
    RELAY_PORT=$(sed -n 's/.*listening.*transport=tcp.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/relay.log" | head -1)
    RELAY_TLS_PORT=$(sed -n 's/.*listening.*transport=tls.*address=127\.0\.0\.2:\([0-9]*\).*/\1/p' "$work/relay.log" | head -1)
    [ -n "$RELAY_PORT" ] && [ -n "$RELAY_TLS_PORT" ] && break
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$RELAY_PORT" ] || [ -z "$RELAY_TLS_PORT" ]; then
    echo "msrp-relay did not start:" >&2
    cat "$work/relay.log" >&2
    return 1
  fi
  # shellcheck disable=SC2034  # read by the scripts that source this file
  RELAY_ARGS=(--relay "127.0.0.1:$RELAY_PORT" --relay-uri "msrp://$BENCH_REALM:$RELAY_PORT;tcp"
    --user "$BENCH_USER" --relay-pid "$RELAY_PID")
  # shellcheck disable=SC2034
  RELAY_TLS_ARGS=(--relay "127.0.0.2:$RELAY_TLS_PORT" --relay-uri "msrps://$BENCH_REALM:$RELAY_TLS_PORT;tcp"
    --tls --insecure --user "$BENCH_USER" --relay-pid "$RELAY_PID")
}

stop_relay() {
  [ -n "${RELAY_PID:-}" ] || return 0
  kill -TERM "$RELAY_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$RELAY_PID" 2>/dev/null || true
  wait "$RELAY_PID" 2>/dev/null || true
  RELAY_PID=
}
