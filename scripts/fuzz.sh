#!/usr/bin/env bash
# Runs every libFuzzer target in $1 for $2 seconds each, from fuzz/corpus/<target>/ (copied to a
# scratch folder, so what the fuzzer finds stays out of the tree), and prints executions per
# target. A crash fails with the reproducer's path.
set -euo pipefail
bin_dir="$1"
seconds="${2:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/plumb-fuzz-run-XXXXXX)"
trap 'rm -rf "$work"' EXIT
total=0
for fuzzer in "$bin_dir"/*_fuzzer; do
  name="$(basename "$fuzzer" _fuzzer)"
  mkdir -p "$work/$name" "$work/crashes"
  if [ -d "$root/fuzz/corpus/$name" ]; then cp -r "$root/fuzz/corpus/$name/." "$work/$name/"; fi
  log="$work/$name.log"
  if ! ASAN_OPTIONS=detect_leaks=1 "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -timeout=10 -max_len=65536 -artifact_prefix="$work/crashes/" "$work/$name" > "$log" 2>&1; then
    tail -n 40 "$log"
    mkdir -p "$root/results/fuzz-crashes"
    cp "$work"/crashes/* "$root/results/fuzz-crashes/" 2>/dev/null || true
    echo "fuzz: $name FAILED; reproducer in results/fuzz-crashes/" >&2
    exit 1
  fi
  runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo 0)"
  total=$((total + runs))
  echo "fuzz: $name: $runs executions in ${seconds}s, no crash"
done
echo "fuzz: $total executions in all"
