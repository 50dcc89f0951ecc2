#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and fuzzes each one briefly, one after the other, over
# its corpus in fuzz/corpus/<target>/ (new inputs are added there; crashes land in
# fuzz/artifacts/<target>/). docs/fuzzing.md says more.
#
#   scripts/fuzz.sh                 every target for FUZZ_SECONDS (default 5) seconds each
#   scripts/fuzz.sh ini policy_file only these targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh token_payload
#   FUZZ_KEEP_CORPUS=1 scripts/fuzz.sh   the corpora are read only; new inputs go to a temporary
#                                        directory (what scripts/test-all.sh does)
#
# Stable Rust is enough: RUSTC_BOOTSTRAP=1 lets it take the nightly flags cargo-fuzz passes.
# Installs cargo-fuzz when missing. FUZZ_SANITIZER (default none: the crates forbid unsafe code,
# and AddressSanitizer halves the speed) is cargo fuzz's -s; FUZZ_TARGET_DIR the build directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
seconds=${FUZZ_SECONDS:-5}
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== build (${targets[*]})"
cargo fuzz build -O -s "$sanitizer" --target-dir "$target_dir"

failed=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s"
  mkdir -p "corpus/$t"
  # libFuzzer adds new inputs to the first directory and only reads the others.
  dirs=("corpus/$t")
  if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
    scratch=$(mktemp -d)
    dirs=("$scratch" "corpus/$t")
  fi
  if ! cargo fuzz run -O -s "$sanitizer" --target-dir "$target_dir" "$t" "${dirs[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$t")
  fi
  if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then rm -rf "$scratch"; fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "== no crash"
