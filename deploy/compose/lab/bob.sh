#!/bin/sh
# The `bob` service: AUTH to relay-b, publish the path a sender needs, print what arrives.
#
# `msrp-relay listen` prints on its first line the path that reaches Bob through relay-b
# (his Use-Path URI, then his own URI), then each received message. That first line goes
# to /rendezvous/bob.path, where `alice` picks it up.
set -eu

RENDEZVOUS=${RENDEZVOUS:-/rendezvous}
COUNT=${BOB_COUNT:-1}
out=$(mktemp)

# A path left by an earlier bob is stale: its token died with that bob's connection.
rm -f "$RENDEZVOUS/bob.path" "$RENDEZVOUS/bob.path.tmp"

msrp-relay listen \
    --relay msrps://relay-b.msrp.test:2855 \
    --user bob --password-file /lab/clients/bob.password \
    --ca /lab/clients/ca.pem \
    --count "$COUNT" > "$out" &
pid=$!

# Wait (at most 60 s) for the first line, as long as the listener is alive.
i=0
while [ "$(wc -l < "$out")" -lt 1 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || status=$?
        echo "bob: msrp-relay listen exited (status ${status:-0}) before printing its path" >&2
        cat "$out" >&2
        exit 1
    fi
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then
        echo "bob: no path from msrp-relay listen after 60 s" >&2
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done

path=$(head -n 1 "$out")
# Write then rename, so that alice never reads half a line.
printf '%s\n' "$path" > "$RENDEZVOUS/bob.path.tmp"
mv "$RENDEZVOUS/bob.path.tmp" "$RENDEZVOUS/bob.path"
echo "bob: reachable at: $path"

# Show the messages as they arrive; stop when the listener does (after --count messages).
tail -n +2 -f --pid="$pid" "$out"
status=0
wait "$pid" || status=$?
echo "bob: msrp-relay listen exited with status $status"
exit "$status"
