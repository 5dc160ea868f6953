#!/usr/bin/env bash
# Fuzz smoke run for CI: build the msrp-proto fuzz targets and run each one for a bounded
# time, one after the other (the machines have 2 cores).
#
#   fuzz/smoke.sh [SECONDS]     # seconds per target, default 60
#
# Works on the stable toolchain: `-s none` builds without a sanitizer (AddressSanitizer needs
# nightly), with debug assertions and overflow checks on. Exits non-zero if a target crashes,
# panics, times out or runs out of memory; the reproducer is left in fuzz/artifacts/<target>/.
set -euo pipefail

secs="${1:-60}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

declare -A dict=([decoder]=msrp.dict [uri]=uri.dict)
for target in decoder uri; do
    echo "== building $target"
    cargo fuzz build -s none "$target"
done
for target in decoder uri; do
    echo "== fuzzing $target for ${secs}s"
    # The first directory is the (git-ignored) working corpus; the seeds are only read.
    mkdir -p "fuzz/corpus/$target"
    if ! cargo fuzz run -s none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -dict="fuzz/dict/${dict[$target]}" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "== FAILED: $target; reproducer in fuzz/artifacts/$target/:" >&2
        ls -l "fuzz/artifacts/$target/" >&2 || true
        exit 1
    fi
done
echo "== fuzz smoke run passed (${secs}s per target)"
