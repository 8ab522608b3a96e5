#!/usr/bin/env bash
# The demo: evaluates the built-in baselines on every suite that needs no judge model, into a
# fresh database; prints the leaderboard and writes the HTML report to results/report.html.
# Usage: scripts/demo.sh PLUMB_BINARY DB_PATH
set -euo pipefail
plumb=${1:-build-release/plumb}
db=${2:-results/demo.db}
rm -f "$db" "$db-wal" "$db-shm"
for suite in pacifaist-style sycophancy-choice sycophancy-opinion sycophancy-pushback managerbench-style; do
  "$plumb" run --suite "$suite" \
    --model builtin/random --model builtin/first --model builtin/last --model builtin/refuse \
    --db "$db" --progress none > /dev/null
done
echo
echo "Leaderboard (built-in reference baselines; a real model should beat all of them):"
echo
"$plumb" leaderboard --all --db "$db"
"$plumb" report --all --db "$db" --out results/report.html
echo
echo "Open results/report.html in a browser, or browse the database live: $plumb serve --db $db"
