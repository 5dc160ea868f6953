#!/usr/bin/env bash
# Runs the real unit under a real systemd: boots this machine's OS tree in a throwaway
# systemd-nspawn container (own network namespace, /etc copied, /usr behind a temporary
# overlay) and there follows the install steps of deploy/README-ops.md with a built
# msrp-relay: sysusers, /etc/msrp-relay with group-readable secrets, the unit, then
#   start (Type=notify: active only after READY=1), /healthz, a TLS handshake, an AUTH,
#   `systemctl reload` (check-config + SIGHUP), a reload with a broken file (must fail and
#   leave the relay running), the sandbox of the main process (user, capabilities,
#   seccomp, no_new_privs), `systemd-analyze security` on the loaded unit, and stop.
#
#   sudo bash .ci/systemd-smoke.sh            # binary: $MSRP_RELAY_BIN or target/{debug,release}
#
# Needs root, systemd-nspawn (Debian's systemd-container, installed when missing),
# openssl, curl and python3 on this machine. Takes about 10 s. Not part of
# .ci/ops-checks.sh: it mounts an overlay and boots a container, which a CI machine may not
# allow. LimitNOFILE is reported, not checked: inside nspawn it is capped by the limits of
# the process that started the container.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

if [ "$(id -u)" -ne 0 ]; then
    echo "systemd-smoke: must run as root" >&2
    exit 2
fi
bin=${MSRP_RELAY_BIN:-}
if [ -z "$bin" ]; then
    target=${CARGO_TARGET_DIR:-target}
    for f in "$target/debug/msrp-relay" "$target/release/msrp-relay"; do
        if [ -x "$f" ] && { [ -z "$bin" ] || [ "$f" -nt "$bin" ]; }; then bin=$f; fi
    done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "systemd-smoke: no msrp-relay binary (cargo build, or set MSRP_RELAY_BIN)" >&2
    exit 2
fi
if ! command -v systemd-nspawn >/dev/null 2>&1; then
    echo "systemd-smoke: installing systemd-container"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends systemd-container; } >/dev/null 2>&1 || {
        echo "systemd-smoke: cannot install systemd-container" >&2
        exit 2
    }
fi

work=$(mktemp -d /tmp/msrp-relay-smoke.XXXXXX)
root=$work/root
data=$work/data
cleanup() {
    mountpoint -q "$root/usr" && umount "$root/usr"
    rm -rf "$work"
}
trap cleanup EXIT

# --- the container's tree ----------------------------------------------------------------
mkdir -p "$root"/{usr,var,root,tmp,home,srv,opt,proc,sys,dev,run} "$work"/{upper,ovl} "$data"
for l in bin lib lib64 sbin; do
    if [ -L "/$l" ]; then ln -s "$(readlink "/$l")" "$root/$l"; fi
done
cp -a /etc "$root/etc"
# A machine id of its own, so that this is no first boot (which would enable the preset units).
systemd-id128 new >"$root/etc/machine-id"
# Start nothing this machine has enabled, only systemd's own units and the test.
find "$root/etc/systemd/system" -mindepth 1 -maxdepth 1 -name '*.wants' -exec rm -rf {} +
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$work/upper,workdir=$work/ovl" "$root/usr" || {
    echo "systemd-smoke: cannot mount an overlay on /usr" >&2
    exit 2
}

# --- what the test installs ---------------------------------------------------------------
install -m 0755 "$bin" "$data/msrp-relay"
cp systemd/msrp-relay.service systemd/msrp-relay.sysusers "$data/"
cp deploy/compose/relay-a.toml "$data/msrp-relay.toml"
LAB_OUT=$work/pki LAB_OWNER=0:0 sh deploy/compose/lab/gen-lab-pki.sh >/dev/null
cp -r "$work/pki/relay-a" "$data/pki"
cp "$work/pki/clients/ca.pem" "$data/client-ca.pem"

cat >"$data/auth.py" <<'PY'
import hashlib, re, socket, ssl
def md5(s): return hashlib.md5(s.encode()).hexdigest()
ctx = ssl.create_default_context(cafile="/opsdata/client-ca.pem")
raw = socket.create_connection(("127.0.0.1", 2855), timeout=10)
s = ctx.wrap_socket(raw, server_hostname="relay-a.msrp.test")
buf = b""
def read():
    global buf
    while True:
        m = re.search(rb"-------(\S+)[$+#]\r\n", buf)
        if m:
            msg, buf = buf[:m.end()], buf[m.end():]
            return msg.decode()
        buf += s.recv(65536)
uri, me = "msrps://relay-a.msrp.test:2855;tcp", "msrps://alice.invalid:9/smoke1;tcp"
s.sendall(f"MSRP tid0001 AUTH\r\nTo-Path: {uri}\r\nFrom-Path: {me}\r\n-------tid0001$\r\n".encode())
r = read()
realm = re.search(r'realm="([^"]+)"', r).group(1)
nonce = re.search(r'nonce="([^"]+)"', r).group(1)
ha1 = md5(f"alice:{realm}:alice-lab-password")
resp = md5(f"{ha1}:{nonce}:00000001:cnonce1:auth:{md5('AUTH:' + uri)}")
s.sendall((f"MSRP tid0002 AUTH\r\nTo-Path: {uri}\r\nFrom-Path: {me}\r\n"
           f'Authorization: Digest username="alice", realm="{realm}", nonce="{nonce}", '
           f'uri="{uri}", response="{resp}", qop=auth, cnonce="cnonce1", nc=00000001\r\n'
           f"-------tid0002$\r\n").encode())
r = read()
assert r.startswith("MSRP tid0002 200 "), r.splitlines()[0]
print(re.search(r"Use-Path: (\S+)", r).group(1))
PY

cat >"$data/test.sh" <<'SH'
#!/bin/bash
# Runs inside the container. One PASS/FAIL line per check in /opsdata/result.
exec 3>/opsdata/result >/opsdata/log 2>&1
set -x
pass() { echo "PASS $*" >&3; }
fail() { echo "FAIL $*" >&3; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
show() { systemctl show -p "$1" --value msrp-relay; }

# The install steps of deploy/README-ops.md.
install -D -m 0644 /opsdata/msrp-relay.sysusers /etc/sysusers.d/msrp-relay.conf
systemd-sysusers
check "sysusers created msrp-relay" id msrp-relay
install -m 0755 /opsdata/msrp-relay /usr/local/bin/msrp-relay
install -d -m 0755 /etc/msrp-relay
install -d -m 0750 -g msrp-relay /etc/msrp-relay/pki
install -m 0644 /opsdata/msrp-relay.toml /etc/msrp-relay/msrp-relay.toml
install -m 0644 /opsdata/pki/relay.pem /opsdata/pki/ca.pem /etc/msrp-relay/pki/
install -m 0640 -g msrp-relay /opsdata/pki/relay.key /opsdata/pki/users.htdigest /etc/msrp-relay/pki/
check "check-config as msrp-relay" runuser -u msrp-relay -- \
    /usr/local/bin/msrp-relay check-config --config /etc/msrp-relay/msrp-relay.toml
install -m 0644 /opsdata/msrp-relay.service /etc/systemd/system/msrp-relay.service
systemctl daemon-reload

check "systemctl start" systemctl start msrp-relay
check "active (running) after start" test "$(show ActiveState)/$(show SubState)" = active/running
check "GET /healthz" curl -fsS http://127.0.0.1:9855/healthz
check "GET /readyz" curl -fsS http://127.0.0.1:9855/readyz
check "TLS handshake verified against the lab CA" sh -c 'echo | timeout 5 openssl s_client \
    -connect 127.0.0.1:2855 -servername relay-a.msrp.test -CAfile /opsdata/client-ca.pem \
    -verify_return_error 2>&1 | grep -q "Verify return code: 0 (ok)"'
if command -v python3 >/dev/null; then
    check "AUTH with the users file" python3 /opsdata/auth.py
fi
pid=$(show MainPID)
check "runs as msrp-relay" test "$(stat -c %U /proc/"$pid")" = msrp-relay
check "no effective capabilities" grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/"$pid"/status
check "empty capability bounding set" grep -q '^CapBnd:[[:space:]]*0000000000000000$' /proc/"$pid"/status
check "no_new_privs" grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/"$pid"/status
check "seccomp filter" grep -q '^Seccomp:[[:space:]]*2$' /proc/"$pid"/status
grep 'open files' /proc/"$pid"/limits

check "systemctl reload" systemctl reload msrp-relay
sleep 0.5
check "same process after reload" test "$(show MainPID)" = "$pid"
journalctl -u msrp-relay --no-pager | grep -q "configuration reloaded" \
    && pass "the relay logged the reload" || fail "the relay logged the reload"
echo 'broken = [' >>/etc/msrp-relay/msrp-relay.toml
if systemctl reload msrp-relay; then fail "reload of a broken file fails"; else pass "reload of a broken file fails"; fi
check "still active after the failed reload" test "$(show ActiveState)" = active
check "same process after the failed reload" test "$(show MainPID)" = "$pid"
sed -i '$d' /etc/msrp-relay/msrp-relay.toml

exposure=$(systemd-analyze security msrp-relay | sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\).*/\1/p')
check "loaded unit: exposure $exposure <= 2.0" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }'

check "systemctl stop" systemctl stop msrp-relay
check "stopped cleanly (exit 0)" test "$(show ExecMainStatus)" = 0
journalctl -u msrp-relay --no-pager -o short-monotonic
echo DONE >&3
SH

cat >"$root/etc/systemd/system/ops-smoke.service" <<'UNIT'
[Unit]
Description=msrp-relay systemd smoke test
[Service]
Type=oneshot
ExecStart=/bin/bash /opsdata/test.sh
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=120
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -s /etc/systemd/system/ops-smoke.service "$root/etc/systemd/system/multi-user.target.wants/"

# --- boot ---------------------------------------------------------------------------------
timeout 180 systemd-nspawn --quiet --keep-unit --register=no --link-journal=no \
    --private-network --machine=msrp-relay-smoke -D "$root" --bind="$data:/opsdata" -b \
    >"$work/console" 2>&1
if [ ! -s "$data/result" ]; then
    echo "systemd-smoke: the container produced no result; console:" >&2
    tail -n 40 "$work/console" >&2
    exit 1
fi
cat "$data/result"
if grep -q '^FAIL' "$data/result" || ! grep -q '^DONE' "$data/result"; then
    echo "systemd-smoke: FAILED; the test's log:"
    sed 's/^/    /' "$data/log"
    exit 1
fi
echo "systemd-smoke: OK"
