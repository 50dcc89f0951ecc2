#!/usr/bin/env bash
# The long-running-operation figures of issue 6 (what the Nova spec planned to measure with
# Rally): for each scenario with and without [service_user], calls to the identity server, the
# latency each inter-service call gains from the service token, and the identity server's CPU
# time with the receivers' caches cold and warm. Writes bench/results/scenarios.md.
#
# Usage: scripts/bench-scenarios.sh [--iterations N] [--operation-ms MS]
# Run it on a quiet machine: everything (identity server, four services, the driver) shares the
# cores, and the 1-minute load average is printed with the results.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/scenarios.md
load=$(cut -d' ' -f1 /proc/loadavg)
echo "1-minute load before the run: $load (nproc $(nproc))" >&2
cargo build --release -q -p baton-services --example bench-scenarios
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
target/release/examples/bench-scenarios --dir "$dir" --out "$out.tmp" "$@"
{
  echo "# Long-running operations: the cost of service tokens"
  echo
  echo "Produced by \`scripts/bench-scenarios.sh $*\` on $(date -u +%Y-%m-%d), $(nproc) cores, 1-minute load before the run $load."
  echo
  cat "$out.tmp"
} > "$out"
rm -f "$out.tmp"
echo "written to $out" >&2
