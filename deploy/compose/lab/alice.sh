#!/bin/sh
# The `alice` service: wait for Bob's path, then send him one message through relay-a.
#
# `msrp-relay send --to` takes the rest of the To-Path after Alice's own relay: here the
# whole line bob published (relay-b's URI for Bob, then Bob's URI), as one argument with
# the URIs separated by spaces. send AUTHs to relay-a and puts the Use-Path it gets first,
# so the SEND goes out with To-Path: <relay-a URI for Alice> <relay-b URI for Bob> <Bob>.
set -eu

RENDEZVOUS=${RENDEZVOUS:-/rendezvous}
MESSAGE=${ALICE_MESSAGE:-Hello Bob, this is Alice, through relay-a and relay-b.}

i=0
while [ ! -s "$RENDEZVOUS/bob.path" ]; do
    i=$((i + 1))
    if [ "$i" -gt 120 ]; then
        echo "alice: no $RENDEZVOUS/bob.path after 60 s: is bob running?" >&2
        exit 1
    fi
    sleep 0.5
done
to=$(head -n 1 "$RENDEZVOUS/bob.path")
# Use a path once: the next alice waits for the next bob.
rm -f "$RENDEZVOUS/bob.path"
echo "alice: sending to: $to"

exec msrp-relay send \
    --relay msrps://relay-a.msrp.test:2855 \
    --user alice --password-file /lab/clients/alice.password \
    --ca /lab/clients/ca.pem \
    --to "$to" \
    --content "$MESSAGE" \
    --json
